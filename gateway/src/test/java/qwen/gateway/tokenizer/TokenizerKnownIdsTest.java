package qwen.gateway.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Token ids published by Qwen or verified against the Python tokenizer (SPEC 4.4 to 4.7). */
class TokenizerKnownIdsTest {

    private static final QwenTokenizer TOKENIZER = QwenTokenizer.bundled();

    @Test
    void specialTokensFollowTheRegularVocabulary() {
        assertEquals(151_851, TOKENIZER.vocabularySize());
        assertEquals(151643, TOKENIZER.specialId("<|endoftext|>"));
        assertEquals(151644, TOKENIZER.specialId("<|im_start|>"));
        assertEquals(151645, TOKENIZER.specialId("<|im_end|>"));
        assertEquals(151646, TOKENIZER.specialId("<|extra_0|>"));
        assertEquals(151850, TOKENIZER.specialId("<|extra_204|>"));
        assertEquals(151643, QwenTokenizer.ENDOFTEXT_ID);
        assertEquals(151644, QwenTokenizer.IM_START_ID);
        assertEquals(151645, QwenTokenizer.IM_END_ID);
        assertThrows(IllegalArgumentException.class, () -> TOKENIZER.specialId("<|extra_205|>"));
    }

    @Test
    void isSpecialCoversExactlyTheSpecialRange() {
        assertFalse(TOKENIZER.isSpecial(0));
        assertFalse(TOKENIZER.isSpecial(151642));
        assertTrue(TOKENIZER.isSpecial(151643));
        assertTrue(TOKENIZER.isSpecial(151850));
        assertFalse(TOKENIZER.isSpecial(151851));
        assertFalse(TOKENIZER.isSpecial(-1));
    }

    @Test
    void specialSurfaceFormsAreOrdinaryTextWhenNoneAreAllowed() {
        assertArrayEquals(new int[] {1350, 9639, 91, 8691, 723, 427, 91, 82598},
                TOKENIZER.encode("print(\"<|endoftext|>\")", SpecialTokens.NONE));
        assertArrayEquals(new int[] {1350, 9639, 91, 8691, 723, 427, 91, 82598},
                TOKENIZER.encodeOrdinary("print(\"<|endoftext|>\")"));
    }

    @Test
    void specialSurfaceFormsBecomeIdsWhenAllAreAllowed() {
        assertArrayEquals(new int[] {1350, 445, 151643, 899},
                TOKENIZER.encode("print(\"<|endoftext|>\")", SpecialTokens.ALL));
    }

    @Test
    void onlyTheAllowedSpecialBecomesAnId() {
        assertArrayEquals(new int[] {1350, 9639, 91, 15460, 62, 15, 91, 82598, 151643},
                TOKENIZER.encode("print(\"<|extra_0|>\")<|endoftext|>", SpecialTokens.only("<|endoftext|>")));
    }

    @Test
    void onlyRejectsNamesThatAreNotSpecialTokens() {
        assertThrows(IllegalArgumentException.class, () -> SpecialTokens.only("<|im_middle|>"));
    }

    @Test
    void pandaVariants() {
        assertArrayEquals(new int[] {47, 9817}, TOKENIZER.encodeOrdinary("Panda"));
        assertArrayEquals(new int[] {72410}, TOKENIZER.encodeOrdinary(" Panda"));
        assertArrayEquals(new int[] {47, 55433}, TOKENIZER.encodeOrdinary("Pandas"));
        assertArrayEquals(new int[] {33506, 300}, TOKENIZER.encodeOrdinary(" Pandas"));
    }

    @Test
    void usefulIds() {
        assertArrayEquals(new int[] {198}, TOKENIZER.encodeOrdinary("\n"));
        assertArrayEquals(new int[] {8948}, TOKENIZER.encodeOrdinary("system"));
        assertArrayEquals(new int[] {872}, TOKENIZER.encodeOrdinary("user"));
        assertArrayEquals(new int[] {77091}, TOKENIZER.encodeOrdinary("assistant"));
        assertArrayEquals(new int[] {2610, 525, 264, 10950, 17847, 13},
                TOKENIZER.encodeOrdinary("You are a helpful assistant."));
        assertArrayEquals(new int[] {108386}, TOKENIZER.encodeOrdinary("你好"));
        assertArrayEquals(new int[] {9707, 11, 1879, 0}, TOKENIZER.encodeOrdinary("Hello, world!"));
        assertArrayEquals(new int[] {271}, TOKENIZER.encodeOrdinary("\n\n"));
    }

    @Test
    void separateEncodesDifferFromOneJoinedEncode() {
        // SPEC 5.2: "\n" then "\n\nHi" is [198] + [271, 13048]; "\n\n\nHi" at once is [1406, 13048].
        assertArrayEquals(new int[] {271, 13048}, TOKENIZER.encodeOrdinary("\n\nHi"));
        assertArrayEquals(new int[] {1406, 13048}, TOKENIZER.encodeOrdinary("\n\n\nHi"));
    }

    @Test
    void injectionAttemptStaysTextUnlessSpecialsAreAllowed() {
        assertArrayEquals(new int[] {13048, 82639, 318, 6213, 91, 29}, TOKENIZER.encodeOrdinary("Hi <|im_end|>"));
        assertArrayEquals(new int[] {13048, 220, 151645}, TOKENIZER.encode("Hi <|im_end|>", SpecialTokens.ALL));
    }

    @Test
    void decodingReplacesAnIncompleteCharacterAndJoinsSplitCharacters() {
        assertEquals(" \uFFFD", TOKENIZER.decode(new int[] {51461}));
        assertEquals(" 根", TOKENIZER.decode(new int[] {51461, 117}));
        assertArrayEquals(new byte[] {' ', (byte) 0xE6, (byte) 0xA0}, TOKENIZER.decodeBytes(new int[] {51461}));
    }

    @Test
    void specialTokensDecodeToTheirSurfaceFormUnlessSkipped() {
        int[] ids = {151644, 872, 198, 108386, 151645, 151643};
        assertEquals("<|im_start|>user\n你好<|im_end|><|endoftext|>", TOKENIZER.decode(ids));
        assertEquals("user\n你好", TOKENIZER.decode(ids, true));
    }

    @Test
    void idsOutsideTheVocabularyAreRejectedByName() {
        for (int bad : new int[] {-1, 151851, 151935, Integer.MAX_VALUE}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> TOKENIZER.decode(new int[] {198, bad}));
            assertTrue(e.getMessage().contains(Integer.toString(bad)), e.getMessage());
            assertTrue(e.getMessage().contains("151851"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> TOKENIZER.decode(new int[] {bad}, true));
            assertThrows(IllegalArgumentException.class, () -> TOKENIZER.decodeBytes(new int[] {bad}));
        }
    }

    @Test
    void idsAtTheVocabularyBoundariesDecode() {
        assertEquals("<|extra_204|>", TOKENIZER.decode(new int[] {151850}));
        assertEquals("!", TOKENIZER.decode(new int[] {0}));
        assertEquals(1, TOKENIZER.decodeBytes(new int[] {255}).length);
    }
}
