package qwen.gateway.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/**
 * Decoding follows CPython's {@code bytes.decode("utf-8", errors="replace")}: one U+FFFD per
 * maximal ill-formed subpart. Expected strings were written from CPython's documented behaviour.
 */
class TokenizerUtf8DecodingTest {

    @Test
    void wellFormedTextIsUnchanged() {
        String text = "a é 中 😀 \u0000 \uFFFF \uDBFF\uDFFF";
        assertEquals(text, Utf8Decoder.decode(text.getBytes(StandardCharsets.UTF_8)));
    }

    @Test
    void encodedSurrogateIsThreeReplacements() {
        // Java's own decoder gives one U+FFFD here; CPython gives three.
        assertEquals("\uFFFD\uFFFD\uFFFD", decode(0xED, 0xA0, 0x80));
    }

    @Test
    void truncatedSequenceAtTheEndIsOneReplacement() {
        assertEquals(" \uFFFD", decode(0x20, 0xE6, 0xA0));
        assertEquals("\uFFFD", decode(0xF0, 0x9F, 0x98));
    }

    @Test
    void truncatedSequenceBeforeAnotherCharacterIsOneReplacement() {
        assertEquals("\uFFFDA", decode(0xF0, 0x9F, 0x98, 0x41));
        assertEquals("\uFFFD中", decode(0xE6, 0xE4, 0xB8, 0xAD));
    }

    @Test
    void bytesThatNeverStartACharacterAreOneReplacementEach() {
        assertEquals("\uFFFD\uFFFD", decode(0xC0, 0xAF)); // overlong '/'
        assertEquals("\uFFFD\uFFFD", decode(0x80, 0xBF));
        assertEquals("\uFFFDx", decode(0xFF, 0x78));
        assertEquals("\uFFFD\uFFFD\uFFFD\uFFFD", decode(0xF5, 0x80, 0x80, 0x80));
    }

    @Test
    void secondByteRangesExcludeOverlongsAndOutOfRangeCodePoints() {
        assertEquals("\uFFFD\uFFFD\uFFFD", decode(0xE0, 0x80, 0x80)); // overlong 3-byte
        assertEquals("\uFFFD\uFFFD\uFFFD\uFFFD", decode(0xF0, 0x80, 0x80, 0x80)); // overlong 4-byte
        assertEquals("\uFFFD\uFFFD\uFFFD\uFFFD", decode(0xF4, 0x90, 0x80, 0x80)); // above U+10FFFF
        assertEquals("\uDBFF\uDFFF", decode(0xF4, 0x8F, 0xBF, 0xBF)); // U+10FFFF itself
    }

    @Test
    void heldBackTailIsReportedWhenInputMayContinue() {
        byte[] bytes = {0x61, (byte) 0xE6, (byte) 0xA0};
        StringBuilder out = new StringBuilder();
        assertEquals(1, Utf8Decoder.decode(bytes, 0, bytes.length, false, out));
        assertEquals("a", out.toString());
    }

    private static String decode(int... unsignedBytes) {
        byte[] bytes = new byte[unsignedBytes.length];
        for (int i = 0; i < bytes.length; i++) {
            bytes[i] = (byte) unsignedBytes[i];
        }
        return Utf8Decoder.decode(bytes);
    }
}
