package qwen.gateway.tokenizer;

/**
 * UTF-8 decoding with CPython's {@code errors="replace"} rule, which Qwen's tokenizer uses by
 * default (SPEC 4.6).
 *
 * <p>Each maximal ill-formed subpart becomes one U+FFFD: a byte that can never start a character
 * is one subpart; a valid lead byte followed by some valid continuation bytes and then a wrong
 * byte (or the end of the data) is one subpart, and decoding resumes at the wrong byte. Java's own
 * decoder differs on encoded surrogates ({@code ED A0 80}: CPython and this class give three
 * U+FFFD, Java one), which is why this class exists.
 */
final class Utf8Decoder {

    static final char REPLACEMENT = '\uFFFD';

    private Utf8Decoder() {
    }

    /** Decodes all of {@code bytes}; a truncated sequence at the end becomes one U+FFFD. */
    static String decode(byte[] bytes) {
        StringBuilder out = new StringBuilder(bytes.length);
        decode(bytes, 0, bytes.length, true, out);
        return out.toString();
    }

    /**
     * Decodes {@code bytes[from, to)} into {@code out}.
     *
     * @param endOfInput when false, a trailing sequence that is a valid but incomplete prefix of a
     *     character is left undecoded, because later bytes may still complete it
     * @return the index of the first byte not consumed: {@code to}, or the start of the held-back
     *     trailing sequence
     */
    static int decode(byte[] bytes, int from, int to, boolean endOfInput, StringBuilder out) {
        int i = from;
        while (i < to) {
            int lead = bytes[i] & 0xff;
            if (lead < 0x80) {
                out.append((char) lead);
                i++;
                continue;
            }
            int need = continuationCount(lead);
            if (need == 0) {
                out.append(REPLACEMENT); // 80..C1 and F5..FF never start a character
                i++;
                continue;
            }
            int codePoint = lead & (0x3F >> need);
            int j = i + 1;
            int got = 0;
            boolean wrongByte = false;
            while (got < need && j < to) {
                int b = bytes[j] & 0xff;
                boolean inRange = got == 0
                        ? b >= secondByteMin(lead) && b <= secondByteMax(lead)
                        : b >= 0x80 && b <= 0xBF;
                if (!inRange) {
                    wrongByte = true;
                    break;
                }
                codePoint = (codePoint << 6) | (b & 0x3F);
                j++;
                got++;
            }
            if (got == need) {
                out.appendCodePoint(codePoint);
            } else if (!wrongByte && !endOfInput) {
                return i;
            } else {
                out.append(REPLACEMENT);
            }
            i = j;
        }
        return to;
    }

    /** Continuation bytes a lead byte announces, or 0 when the byte cannot start a character. */
    private static int continuationCount(int lead) {
        if (lead >= 0xC2 && lead <= 0xDF) {
            return 1;
        }
        if (lead >= 0xE0 && lead <= 0xEF) {
            return 2;
        }
        if (lead >= 0xF0 && lead <= 0xF4) {
            return 3;
        }
        return 0;
    }

    // The second byte's range excludes overlong forms (E0, F0), surrogates (ED) and code points
    // above U+10FFFF (F4), as in the Unicode table of well-formed byte sequences.
    private static int secondByteMin(int lead) {
        return switch (lead) {
            case 0xE0 -> 0xA0;
            case 0xF0 -> 0x90;
            default -> 0x80;
        };
    }

    private static int secondByteMax(int lead) {
        return switch (lead) {
            case 0xED -> 0x9F;
            case 0xF4 -> 0x8F;
            default -> 0xBF;
        };
    }
}
