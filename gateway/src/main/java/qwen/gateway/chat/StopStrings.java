package qwen.gateway.chat;

import java.util.List;

/**
 * Finds stop strings in a growing reply and says how much of its end to hold back because it could
 * still become one.
 */
final class StopStrings {

    /** A stop string found at {@code index} of the reply. */
    record Match(int index, String stop) {
    }

    private final List<String> stops;
    private final int longest;

    StopStrings(List<String> stops) {
        this.stops = List.copyOf(stops);
        this.longest = stops.stream().mapToInt(String::length).max().orElse(0);
    }

    /** The earliest match starting at or after {@code from}, the first listed on a tie; null when none. */
    Match find(CharSequence text, int from) {
        if (stops.isEmpty()) {
            return null;
        }
        String s = text.toString();
        Match best = null;
        for (String stop : stops) {
            int at = s.indexOf(stop, from);
            if (at >= 0 && (best == null || at < best.index())) {
                best = new Match(at, stop);
            }
        }
        return best;
    }

    /**
     * Length of the longest end of {@code text[from..]} that is the beginning of a stop string
     * (shorter than it): text that must wait for the next token before it can be shown.
     */
    int heldBack(CharSequence text, int from) {
        int end = text.length();
        for (int k = Math.min(longest - 1, end - from); k > 0; k--) {
            CharSequence tail = text.subSequence(end - k, end);
            for (String stop : stops) {
                if (stop.length() > k && stop.startsWith(tail.toString())) {
                    return k;
                }
            }
        }
        return 0;
    }
}
