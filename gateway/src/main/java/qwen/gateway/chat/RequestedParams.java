package qwen.gateway.chat;

import java.util.List;

/**
 * Generation parameters as a client sent them, before defaults: null means "not given".
 * Adapters (gRPC, OpenAI) fill this from their own request shapes; {@link GenerationSettings#resolve}
 * validates it and applies the model's defaults.
 */
public record RequestedParams(
        Integer maxNewTokens,
        Float temperature,
        Float topP,
        Integer topK,
        Float repetitionPenalty,
        Long seed,
        List<String> stop,
        boolean logprobs,
        int topLogprobs,
        boolean greedy) {

    /** Nothing given: every default applies. */
    public static RequestedParams none() {
        return new RequestedParams(null, null, null, null, null, null, List.of(), false, 0, false);
    }
}
