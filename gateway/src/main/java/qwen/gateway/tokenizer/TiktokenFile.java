package qwen.gateway.tokenizer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.Base64;
import java.util.HexFormat;

/**
 * Reads Qwen's {@code qwen.tiktoken}: one {@code <base64 token bytes> <rank>} entry per line
 * (SPEC 4.1).
 *
 * <p>The special-token ids are fixed numbers that start right after the last regular rank, and the
 * model's embedding rows are indexed by these ranks, so a different vocabulary file would silently
 * produce wrong ids. The file's SHA-256 is therefore checked before anything is parsed.
 */
final class TiktokenFile {

    /** SHA-256 of the Qwen-1 {@code qwen.tiktoken} (151,643 ranks, 2,561,218 bytes). */
    static final String SHA256 = "b2b1b8dfb5cc5f024bafc373121c6aba3f66f9a5a0269e243470a1de16a33186";

    /** Number of regular tokens in that file, ranks 0 to 151642. */
    static final int REGULAR_TOKEN_COUNT = 151_643;

    private TiktokenFile() {
    }

    /**
     * Verifies and parses the file's content.
     *
     * @param source where the content came from, for error messages
     * @throws IOException if the hash differs or an entry is malformed
     */
    static RankTable parse(byte[] content, String source) throws IOException {
        verifySha256(content, source);
        byte[][] tokens = new byte[REGULAR_TOKEN_COUNT][];
        Base64.Decoder base64 = Base64.getDecoder();
        int lineNumber = 0;
        int lineStart = 0;
        while (lineStart < content.length) {
            int newline = indexOf(content, (byte) '\n', lineStart, content.length);
            int lineEnd = newline < 0 ? content.length : newline;
            lineNumber++;
            if (lineEnd > lineStart) {
                int space = indexOf(content, (byte) ' ', lineStart, lineEnd);
                if (space < 0) {
                    throw new IOException(
                            source + " line " + lineNumber + ": no space between token and rank");
                }
                int rank = parseRank(content, space + 1, lineEnd, source, lineNumber);
                if (tokens[rank] != null) {
                    throw new IOException(
                            source + " line " + lineNumber + ": rank " + rank + " appears twice");
                }
                tokens[rank] = base64.decode(Arrays.copyOfRange(content, lineStart, space));
            }
            lineStart = lineEnd + 1;
        }
        for (int rank = 0; rank < tokens.length; rank++) {
            if (tokens[rank] == null) {
                throw new IOException(source + ": rank " + rank + " is missing");
            }
        }
        return new RankTable(tokens);
    }

    private static void verifySha256(byte[] content, String source) throws IOException {
        String actual;
        try {
            actual = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(content));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java platform must provide SHA-256", e);
        }
        if (!actual.equals(SHA256)) {
            throw new IOException(source + " is not Qwen-1's qwen.tiktoken: sha256 is " + actual
                    + ", expected " + SHA256);
        }
    }

    private static int parseRank(byte[] content, int from, int to, String source, int lineNumber)
            throws IOException {
        String text = new String(content, from, to - from, StandardCharsets.US_ASCII).strip();
        try {
            int rank = Integer.parseInt(text);
            if (rank >= 0 && rank < REGULAR_TOKEN_COUNT) {
                return rank;
            }
        } catch (NumberFormatException e) {
            // reported below with the line number
        }
        throw new IOException(source + " line " + lineNumber + ": rank '" + text + "' is not in [0, "
                + REGULAR_TOKEN_COUNT + ")");
    }

    private static int indexOf(byte[] content, byte wanted, int from, int to) {
        for (int i = from; i < to; i++) {
            if (content[i] == wanted) {
                return i;
            }
        }
        return -1;
    }
}
