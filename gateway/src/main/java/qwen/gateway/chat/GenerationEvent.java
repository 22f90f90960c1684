package qwen.gateway.chat;

import java.util.List;

/** What a generation emits, in order: one Started, zero or more Delta, one Finished (or a failure). */
public sealed interface GenerationEvent {

    /**
     * @param promptTokens tokens in the prompt
     * @param cachedPromptTokens prompt tokens whose KV the shards already held (not prefilled again)
     * @param seed the sampling seed in use
     */
    record Started(String requestId, String sessionId, int promptTokens, int cachedPromptTokens, long seed)
            implements GenerationEvent {
    }

    /**
     * New output: text made of complete UTF-8 characters only (it may be empty while a character is
     * incomplete or while text that may start a stop string is held back), the token ids it covers,
     * and their logprobs when asked for.
     */
    record Delta(String text, int[] tokenIds, List<TokenLogprobs> logprobs) implements GenerationEvent {
    }

    /**
     * @param reason why generation ended
     * @param matchedStop the stop string that ended it, or "" (stop tokens and length leave it empty)
     * @param text the whole reply text, cut before a stop string, not stripped
     * @param completionIds every generated id, the final stop token included if one ended the reply
     */
    record Finished(FinishReason reason, String matchedStop, String text, int[] completionIds, Usage usage,
                    long timeToFirstTokenNanos, long totalNanos, long queueNanos) implements GenerationEvent {
    }

    /** Why a generation ended. */
    enum FinishReason {
        /** A stop token or stop string. */
        STOP,
        /** max_new_tokens, or the sequence filled the context. */
        LENGTH,
        /** Cancel, or the client went away. */
        CANCELLED
    }

    /** Token counts of a generation. */
    record Usage(int promptTokens, int completionTokens, int cachedPromptTokens) {
    }

    /** A generated token's logprob and the most likely alternatives at its position. */
    record TokenLogprobs(int tokenId, float logprob, List<Alternative> top) {
    }

    /** An alternative token at a position. */
    record Alternative(int tokenId, float logprob) {
    }
}
