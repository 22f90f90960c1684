package qwen.gateway.chat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** GenerationSettings.resolve: the model's defaults, and one message per rule naming the field. */
class GenerationSettingsResolveTest {

    private static final GenerationDefaults QWEN = GenerationDefaults.bundled();

    private static RequestedParams params(Integer maxNewTokens, Float temperature, Float topP, Integer topK,
                                          Float penalty, Long seed, List<String> stop, boolean logprobs,
                                          int topLogprobs, boolean greedy) {
        return new RequestedParams(maxNewTokens, temperature, topP, topK, penalty, seed, stop, logprobs, topLogprobs,
                greedy);
    }

    private static void assertInvalid(String message, RequestedParams p) {
        GatewayException e = assertThrows(GatewayException.class, () -> GenerationSettings.resolve(p, QWEN));
        assertEquals(GatewayException.Kind.INVALID_ARGUMENT, e.kind());
        assertEquals(message, e.getMessage());
    }

    @Test
    void nothingGivenTakesQwensGenerationConfig() {
        GenerationSettings s = GenerationSettings.resolve(RequestedParams.none(), QWEN);
        assertEquals(512, s.maxNewTokens());
        assertFalse(s.greedy());
        assertEquals(1.0f, s.temperature());
        assertEquals(0, s.topK());
        assertEquals(0.8f, s.topP());
        assertEquals(1.1f, s.repetitionPenalty(), 1e-6);
        assertEquals(List.of(), s.stop());
        assertFalse(s.logprobs());
        assertEquals(0, s.topLogprobs());
        assertTrue(s.seed() >= 0);
    }

    @Test
    void givenValuesWin() {
        GenerationSettings s = GenerationSettings.resolve(
                params(7, 0.7f, 0.5f, 40, 1.0f, 42L, List.of("\n\n"), true, 5, false), QWEN);
        assertEquals(7, s.maxNewTokens());
        assertEquals(0.7f, s.temperature());
        assertEquals(0.5f, s.topP());
        assertEquals(40, s.topK());
        assertEquals(1.0f, s.repetitionPenalty());
        assertEquals(42L, s.seed());
        assertEquals(List.of("\n\n"), s.stop());
        assertTrue(s.logprobs());
        assertEquals(5, s.topLogprobs());
        assertFalse(s.greedy());
    }

    @Test
    void greedyWhenAskedOrAtTemperatureZero() {
        assertTrue(GenerationSettings.resolve(params(null, null, null, null, null, null, List.of(), false, 0, true),
                QWEN).greedy());
        assertTrue(GenerationSettings.resolve(params(null, 0f, null, null, null, null, List.of(), false, 0, false),
                QWEN).greedy());
    }

    @Test
    void seedIsDrawnWhenAbsent() {
        long first = GenerationSettings.resolve(RequestedParams.none(), QWEN).seed();
        boolean differs = false;
        for (int i = 0; i < 5 && !differs; i++) {
            differs = GenerationSettings.resolve(RequestedParams.none(), QWEN).seed() != first;
        }
        assertTrue(differs);
        assertNotEquals(null, GenerationSettings.resolve(RequestedParams.none(), QWEN));
    }

    @Test
    void maxNewTokens() {
        assertInvalid("max_new_tokens must be >= 1, got 0",
                params(0, null, null, null, null, null, List.of(), false, 0, false));
        assertEquals(1, GenerationSettings.resolve(params(1, null, null, null, null, null, List.of(), false, 0, false),
                QWEN).maxNewTokens());
    }

    @Test
    void temperature() {
        assertInvalid("temperature must be in [0, 100], got -0.5",
                params(null, -0.5f, null, null, null, null, List.of(), false, 0, false));
        assertInvalid("temperature must be in [0, 100], got NaN",
                params(null, Float.NaN, null, null, null, null, List.of(), false, 0, false));
        assertInvalid("temperature must be in [0, 100], got 500.0",
                params(null, 500f, null, null, null, null, List.of(), false, 0, false));
    }

    @Test
    void topP() {
        assertInvalid("top_p must be in (0, 1], got 0.0",
                params(null, null, 0f, null, null, null, List.of(), false, 0, false));
        assertInvalid("top_p must be in (0, 1], got 1.5",
                params(null, null, 1.5f, null, null, null, List.of(), false, 0, false));
        assertEquals(1f, GenerationSettings.resolve(params(null, null, 1f, null, null, null, List.of(), false, 0, false),
                QWEN).topP());
    }

    @Test
    void topK() {
        assertInvalid("top_k must be >= 0, got -1",
                params(null, null, null, -1, null, null, List.of(), false, 0, false));
    }

    @Test
    void repetitionPenalty() {
        assertInvalid("repetition_penalty must be > 0, got 0.0",
                params(null, null, null, null, 0f, null, List.of(), false, 0, false));
        assertInvalid("repetition_penalty must be > 0, got -1.0",
                params(null, null, null, null, -1f, null, List.of(), false, 0, false));
    }

    @Test
    void topLogprobs() {
        assertInvalid("top_logprobs must be in [0, 20], got 21",
                params(null, null, null, null, null, null, List.of(), true, 21, false));
        assertInvalid("top_logprobs must be in [0, 20], got -1",
                params(null, null, null, null, null, null, List.of(), true, -1, false));
        assertInvalid("top_logprobs needs logprobs to be true, got top_logprobs 3 with logprobs false",
                params(null, null, null, null, null, null, List.of(), false, 3, false));
        assertEquals(20, GenerationSettings.resolve(params(null, null, null, null, null, null, List.of(), true, 20,
                false), QWEN).topLogprobs());
    }

    @Test
    void stopStrings() {
        List<String> seventeen = new ArrayList<>();
        for (int i = 0; i < 17; i++) {
            seventeen.add("s" + i);
        }
        assertInvalid("stop may hold at most 16 strings, got 17",
                params(null, null, null, null, null, null, seventeen, false, 0, false));
        assertEquals(16, GenerationSettings.resolve(params(null, null, null, null, null, null,
                seventeen.subList(0, 16), false, 0, false), QWEN).stop().size());
        assertInvalid("stop[1] must be 1 to 256 bytes of UTF-8, got 0",
                params(null, null, null, null, null, null, List.of("a", ""), false, 0, false));
        char[] long257 = new char[257];
        Arrays.fill(long257, 'x');
        assertInvalid("stop[0] must be 1 to 256 bytes of UTF-8, got 257",
                params(null, null, null, null, null, null, List.of(new String(long257)), false, 0, false));
        // 86 three-byte characters are 258 bytes: the limit counts bytes, not characters.
        assertInvalid("stop[0] must be 1 to 256 bytes of UTF-8, got 258",
                params(null, null, null, null, null, null, List.of("好".repeat(86)), false, 0, false));
        assertEquals(List.of(), GenerationSettings.resolve(params(null, null, null, null, null, null, null, false, 0,
                false), QWEN).stop());
    }
}
