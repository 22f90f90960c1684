package qwen.gateway.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.text.Normalizer;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * decode(encode(x)) == NFC(x) across scripts and whitespace, plus structural properties where no
 * published ids exist.
 */
class TokenizerRoundTripTest {

    private static final QwenTokenizer TOKENIZER = QwenTokenizer.bundled();

    static final List<String> SAMPLES = List.of(
            "通义千问是阿里云研发的大语言模型。它能够回答问题、创作文字，还能表达观点、撰写代码。",
            "The quick brown fox jumps over the lazy dog. It's they're we've I'm you'll he'd.",
            "public static void main(String[] args) {\n\tSystem.out.println(\"hi\");\n}\n",
            "def f(x):\n    return {'a': x ** 2, \"b\": [1, 2, 3]}  # comment\n\n\n",
            "👋🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🧑🏿‍💻 ❤️‍🔥 🇨🇳🇺🇸 😀😃😄",
            "a\u3000b\u00A0c\r\nd\te  \t \n  trailing spaces   ",
            "\u2003em\u2028line\u0085next\r\r\n\n",
            "混合 mixed 文本 text，标点！？「引号」…… ２０２４年",
            "Ünïcödé ñ ç ß ø Ω ж ع ह 한국어 日本語のテキスト",
            "12345 3.14159 -0.5e10 0x1F ١٢٣",
            "<|im_start|>user\n<|endoftext|><|extra_7|>",
            "");

    @Test
    void decodeInvertsEncodeForEverySample() {
        for (String text : SAMPLES) {
            String nfc = Normalizer.normalize(text, Normalizer.Form.NFC);
            assertEquals(nfc, TOKENIZER.decode(TOKENIZER.encodeOrdinary(text)), "ordinary: " + text);
            assertEquals(nfc, TOKENIZER.decode(TOKENIZER.encode(text, SpecialTokens.ALL)), "all: " + text);
        }
    }

    @Test
    void inputIsNormalisedToNfcBeforeEncoding() {
        String decomposed = "Cafe\u0301 n\u0303";
        assertFalse(Normalizer.isNormalized(decomposed, Normalizer.Form.NFC));
        assertArrayEquals(TOKENIZER.encodeOrdinary("Café ñ"), TOKENIZER.encodeOrdinary(decomposed));
        assertEquals("Café ñ", TOKENIZER.decode(TOKENIZER.encodeOrdinary(decomposed)));
    }

    @Test
    void digitsAreSplitOnePerToken() {
        int[] ids = TOKENIZER.encodeOrdinary("12345");
        assertEquals(5, ids.length);
        for (int i = 0; i < 5; i++) {
            assertEquals(String.valueOf((char) ('1' + i)), TOKENIZER.decode(new int[] {ids[i]}));
        }
        assertEquals(10, TOKENIZER.encodeOrdinary("2024-01-02").length, "8 digits and 2 dashes");
    }

    @Test
    void specialSpellingsEncodeAsOrdinaryTextUnderNone() {
        String text = "<|im_start|>system\nx<|im_end|><|endoftext|><|extra_204|>";
        int[] ids = TOKENIZER.encodeOrdinary(text);
        assertTrue(Arrays.stream(ids).noneMatch(TOKENIZER::isSpecial), Arrays.toString(ids));
        assertEquals(text, TOKENIZER.decode(ids));
        int[] allowed = TOKENIZER.encode(text, SpecialTokens.ALL);
        assertEquals(4, Arrays.stream(allowed).filter(TOKENIZER::isSpecial).count(), Arrays.toString(allowed));
    }

    @Test
    void almostSpecialSpellingsStayText() {
        for (String text : List.of("<|im_end|", "<|IM_END|>", "<|extra_205|>", "<<|im_end|>>", "<||>")) {
            int[] ids = TOKENIZER.encode(text, SpecialTokens.ALL);
            long specials = Arrays.stream(ids).filter(TOKENIZER::isSpecial).count();
            assertEquals(text.equals("<<|im_end|>>") ? 1 : 0, specials, text);
            assertEquals(text, TOKENIZER.decode(ids));
        }
    }

    @Test
    void chineseUsesFewerTokensThanBytes() {
        String text = SAMPLES.get(0);
        int[] ids = TOKENIZER.encodeOrdinary(text);
        int bytes = text.getBytes(StandardCharsets.UTF_8).length;
        // Qwen's vocabulary holds whole common Chinese words, so there are fewer tokens than
        // characters; a byte-level fallback would give one token per byte, three per character.
        assertTrue(ids.length < text.length(), ids.length + " tokens for " + text.length() + " chars");
        assertTrue(ids.length * 3 < bytes, ids.length + " tokens for " + bytes + " bytes");
    }

    @Test
    void loneSurrogatesBecomeReplacementCharacters() {
        assertEquals("a\uFFFDb", TOKENIZER.decode(TOKENIZER.encodeOrdinary("a\uD800b")));
        assertEquals("\uFFFD", TOKENIZER.decode(TOKENIZER.encodeOrdinary("\uDC00")));
    }

    @Test
    void encodingAHundredKilobytesIsFast() {
        StringBuilder mixed = new StringBuilder();
        while (mixed.length() < 100_000) {
            SAMPLES.forEach(mixed::append);
        }
        // One 100 KB piece: Chinese has no spaces, so \p{L}+ matches all of it at once.
        String oneLongPiece = "通义千问是阿里云研发的大语言模型".repeat(100_000 / 16);
        String expected = Normalizer.normalize(mixed, Normalizer.Form.NFC);
        TOKENIZER.encodeOrdinary(mixed.toString()); // warm up the JIT
        assertTimeoutPreemptively(Duration.ofSeconds(2), () -> {
            assertEquals(expected, TOKENIZER.decode(TOKENIZER.encode(mixed.toString(), SpecialTokens.ALL)));
            assertEquals(oneLongPiece, TOKENIZER.decode(TOKENIZER.encodeOrdinary(oneLongPiece)));
        });
    }
}
