package qwen.tools;

import java.lang.management.ManagementFactory;
import java.util.Arrays;
import java.util.List;

/**
 * How the benchmark commands reduce repeated measurements and print them: medians and
 * nearest-rank percentiles, two decimals in the JSON reports, the machine's load average beside
 * every figure (the machines are shared), and progress lines on stderr so stdout stays one JSON
 * object.
 */
final class Figures {

    private Figures() {
    }

    /** The median of v (the mean of the middle two for an even count); v is not modified. */
    static double median(double... v) {
        if (v.length == 0) {
            throw new IllegalArgumentException("no values");
        }
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    static double median(List<Double> v) {
        return median(v.stream().mapToDouble(Double::doubleValue).toArray());
    }

    /** The nearest-rank p-th percentile (0 < p <= 100) of values; NaN when there are none. */
    static double percentile(List<Double> values, int p) {
        if (values.isEmpty()) {
            return Double.NaN;
        }
        double[] sorted = values.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        int rank = (int) Math.ceil(p / 100.0 * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, rank))];
    }

    /** v to two decimals, as the reports print figures. */
    static double round(double v) {
        return Math.round(v * 100) / 100.0;
    }

    /** The 1-minute load average, to two decimals. */
    static double loadAverage() {
        return round(ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
    }

    /** A progress line on stderr. */
    static void log(String format, Object... args) {
        System.err.printf(format + "%n", args);
    }
}
