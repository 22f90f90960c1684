package qwen.gateway.openai;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.List;
import java.util.Map;
import qwen.gateway.chat.GenerationEvent;

/**
 * The JSON bodies the OpenAI endpoints answer with, field for field as OpenAI (and vLLM, for the
 * extensions) spell them. Fields that OpenAI sends as {@code null} are kept as null; those it leaves
 * out are left out.
 */
public final class ResponseBodies {

    private ResponseBodies() {
    }

    /** {@code object: "chat.completion"}: a whole reply. */
    public record ChatCompletion(String id, String object, long created, String model, List<ChatChoice> choices,
                          Usage usage) {
    }

    /** @param finishReason "stop", "length" or "abort" (cancelled, as vLLM names it) */
    @JsonInclude(JsonInclude.Include.ALWAYS)
    public record ChatChoice(int index, AssistantMessage message, ChatLogprobs logprobs,
                      @JsonProperty("finish_reason") String finishReason) {
    }

    public record AssistantMessage(String role, String content) {
    }

    /**
     * {@code object: "chat.completion.chunk"}: one Server-Sent Event of a streamed reply.
     *
     * @param usage only in the last chunk when {@code stream_options.include_usage}; left out otherwise
     */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record ChatCompletionChunk(String id, String object, long created, String model, List<ChunkChoice> choices,
                               Usage usage) {
    }

    /** @param finishReason null until the chunk that ends the reply */
    @JsonInclude(JsonInclude.Include.ALWAYS)
    public record ChunkChoice(int index, Delta delta, ChatLogprobs logprobs,
                       @JsonProperty("finish_reason") String finishReason) {
    }

    /** @param role "assistant" in the first chunk only */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Delta(String role, String content) {
    }

    /** One entry per generated token, in order. */
    public record ChatLogprobs(List<TokenLogprob> content) {
    }

    /**
     * @param token the token's text; a token holding part of a UTF-8 character shows U+FFFD
     * @param bytes the token's raw bytes (0..255), so that split characters can be put together
     */
    public record TokenLogprob(String token, float logprob, List<Integer> bytes,
                        @JsonProperty("top_logprobs") List<TopLogprob> topLogprobs) {
    }

    public record TopLogprob(String token, float logprob, List<Integer> bytes) {
    }

    /**
     * @param completionTokens tokens generated, the end token included
     * @param promptTokensDetails how many prompt tokens came from KV the shards already held
     */
    public record Usage(@JsonProperty("prompt_tokens") int promptTokens,
                 @JsonProperty("completion_tokens") int completionTokens,
                 @JsonProperty("total_tokens") int totalTokens,
                 @JsonProperty("prompt_tokens_details") PromptTokensDetails promptTokensDetails) {

        static Usage of(GenerationEvent.Usage usage) {
            return new Usage(usage.promptTokens(), usage.completionTokens(),
                    usage.promptTokens() + usage.completionTokens(),
                    new PromptTokensDetails(usage.cachedPromptTokens()));
        }
    }

    public record PromptTokensDetails(@JsonProperty("cached_tokens") int cachedTokens) {
    }

    /**
     * {@code object: "text_completion"}: a whole answer of {@code /v1/completions}, or one streamed
     * chunk of it (then usage is left out, except in the usage chunk).
     */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record TextCompletion(String id, String object, long created, String model, List<TextChoice> choices,
                          Usage usage) {
    }

    @JsonInclude(JsonInclude.Include.ALWAYS)
    public record TextChoice(int index, String text, LegacyLogprobs logprobs,
                      @JsonProperty("finish_reason") String finishReason) {
    }

    /**
     * OpenAI's legacy logprobs: parallel lists, one entry per generated token.
     *
     * @param topLogprobs per token, the alternatives as {token text: logprob}
     * @param textOffset per token, where its text starts in the completion text, in characters
     *     (Unicode code points, as Python counts)
     */
    public record LegacyLogprobs(List<String> tokens,
                          @JsonProperty("token_logprobs") List<Float> tokenLogprobs,
                          @JsonProperty("top_logprobs") List<Map<String, Float>> topLogprobs,
                          @JsonProperty("text_offset") List<Integer> textOffset) {
    }

    /** {@code GET /v1/models}. */
    public record ModelList(String object, List<ModelEntry> data) {
    }

    /**
     * @param created when this gateway started serving the model, Unix seconds
     * @param maxModelLen the context length in tokens (vLLM's extension)
     */
    public record ModelEntry(String id, String object, long created, @JsonProperty("owned_by") String ownedBy,
                      @JsonProperty("max_model_len") int maxModelLen) {
    }

    /** {@code POST /tokenize}: the ids, their count and the context length. */
    public record Tokens(List<Integer> tokens, int count, @JsonProperty("max_model_len") int maxModelLen) {
    }

    /** {@code POST /detokenize}. */
    public record Detokenized(String prompt) {
    }
}
