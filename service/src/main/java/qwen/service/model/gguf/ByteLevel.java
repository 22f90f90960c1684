package qwen.service.model.gguf;

/**
 * GPT-2's byte-level alphabet (bytes_to_unicode), the way GGUF "gpt2" vocabularies spell bytes:
 * printable Latin-1 bytes stand for themselves, the other 68 bytes map to U+0100 onwards in
 * byte order.
 */
final class ByteLevel {

    private ByteLevel() {
    }

    /** The string for each byte value 0..255. */
    static String[] byteToUnicode() {
        String[] out = new String[256];
        int next = 256;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            out[b] = new String(Character.toChars(printable ? b : next++));
        }
        return out;
    }
}
