package qwen.gateway.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** Token-by-token decoding never shows half a character and adds up to the full decode. */
class StreamingDecoderTest {

    private static final QwenTokenizer TOKENIZER = QwenTokenizer.bundled();

    @Test
    void holdsBackACharacterSplitAcrossTwoTokens() {
        // 51461 is b' \xe6\xa0' and 117 is b'\xb9': together " 根".
        StreamingDecoder decoder = new StreamingDecoder(TOKENIZER, false);
        assertEquals(" ", decoder.accept(51461));
        assertEquals("根", decoder.accept(117));
        assertEquals("", decoder.flush());
    }

    @Test
    void chineseAndEmojiNeverShowAReplacementCharacter() {
        String text = "你好！👨‍👩‍👧‍👦 今天天气很好😀🏳️‍🌈，我们去爬长城吧。🧑🏿‍💻 龘靐齉爩";
        int[] ids = TOKENIZER.encodeOrdinary(text);
        boolean someTokenSplitsACharacter = false;
        for (int id : ids) {
            someTokenSplitsACharacter |= TOKENIZER.decode(new int[] {id}).contains("\uFFFD");
        }
        assertTrue(someTokenSplitsACharacter, "the sample must exercise split characters");

        StreamingDecoder decoder = new StreamingDecoder(TOKENIZER, false);
        StringBuilder streamed = new StringBuilder();
        for (int id : ids) {
            String delta = decoder.accept(id);
            assertFalse(delta.contains("\uFFFD"), "token " + id + " gave " + delta);
            streamed.append(delta);
        }
        streamed.append(decoder.flush());
        assertEquals(text, streamed.toString());
    }

    @Test
    void skipsSpecialTokensWhenAsked() {
        int[] ids = {108386, 151645, 151643};
        StreamingDecoder skipping = new StreamingDecoder(TOKENIZER, true);
        StreamingDecoder showing = new StreamingDecoder(TOKENIZER, false);
        StringBuilder skipped = new StringBuilder();
        StringBuilder shown = new StringBuilder();
        for (int id : ids) {
            skipped.append(skipping.accept(id));
            shown.append(showing.accept(id));
        }
        assertEquals("你好", skipped.toString());
        assertEquals("你好<|im_end|><|endoftext|>", shown.toString());
    }

    @Test
    void flushReplacesABrokenTail() {
        StreamingDecoder decoder = new StreamingDecoder(TOKENIZER, false);
        assertEquals(" ", decoder.accept(51461));
        assertEquals("\uFFFD", decoder.flush());
        assertEquals("", decoder.flush());
    }

    @Test
    void aTailThatCanNoLongerCompleteIsReplacedAtOnce() {
        StreamingDecoder decoder = new StreamingDecoder(TOKENIZER, false);
        decoder.accept(51461); // " \xe6\xa0", waiting for one continuation byte
        assertEquals("\uFFFD\n", decoder.accept(198));
    }

    @Test
    void concatenationEqualsTheWholeDecodeForRandomIds() {
        Random random = new Random(7);
        for (int trial = 0; trial < 200; trial++) {
            int[] ids = random.ints(1 + random.nextInt(40), 0, TOKENIZER.vocabularySize()).toArray();
            StreamingDecoder decoder = new StreamingDecoder(TOKENIZER, true);
            StringBuilder streamed = new StringBuilder();
            for (int id : ids) {
                streamed.append(decoder.accept(id));
            }
            streamed.append(decoder.flush());
            assertEquals(TOKENIZER.decode(ids, true), streamed.toString());
        }
    }

    @Test
    void rejectsIdsOutsideTheVocabulary() {
        StreamingDecoder decoder = new StreamingDecoder(TOKENIZER, true);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> decoder.accept(151_851));
        assertTrue(e.getMessage().contains("151851"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> decoder.accept(-3));
    }
}
