package qwen.tools;

import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/** "--name value" and "--flag" command-line options, with the set of names a command accepts. */
final class Args {

    private final Map<String, String> values = new HashMap<>();

    /**
     * @param valued option names that take a value
     * @param flags option names that take none
     */
    Args(String[] argv, Set<String> valued, Set<String> flags) {
        Set<String> seen = new HashSet<>();
        for (int i = 0; i < argv.length; i++) {
            String a = argv[i];
            if (!a.startsWith("--")) {
                throw new IllegalArgumentException("unexpected argument '" + a + "'");
            }
            String name = a.substring(2);
            if (!seen.add(name)) {
                throw new IllegalArgumentException("--" + name + " given twice");
            }
            if (flags.contains(name)) {
                values.put(name, "true");
            } else if (valued.contains(name)) {
                if (i + 1 >= argv.length) {
                    throw new IllegalArgumentException("--" + name + " needs a value");
                }
                values.put(name, argv[++i]);
            } else {
                throw new IllegalArgumentException("unknown option --" + name);
            }
        }
    }

    String get(String name, String fallback) {
        return values.getOrDefault(name, fallback);
    }

    String required(String name) {
        String v = values.get(name);
        if (v == null) {
            throw new IllegalArgumentException("--" + name + " is required");
        }
        return v;
    }

    boolean has(String name) {
        return values.containsKey(name);
    }

    int integer(String name, int fallback) {
        String v = values.get(name);
        try {
            return v == null ? fallback : Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--" + name + " must be an integer, got '" + v + "'");
        }
    }

    float real(String name, float fallback) {
        String v = values.get(name);
        try {
            return v == null ? fallback : Float.parseFloat(v.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--" + name + " must be a number, got '" + v + "'");
        }
    }

    /** A comma-separated list of integers, e.g. "1,2,3". */
    int[] integers(String name) {
        String v = required(name);
        String[] parts = v.split(",");
        int[] out = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            try {
                out[i] = Integer.parseInt(parts[i].trim());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--" + name + " must be comma-separated integers, got '" + parts[i] + "'");
            }
        }
        return out;
    }
}
