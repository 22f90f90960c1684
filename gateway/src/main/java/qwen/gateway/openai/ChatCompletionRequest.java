package qwen.gateway.openai;

import com.fasterxml.jackson.annotation.JsonFormat;
import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;

/**
 * Body of {@code POST /v1/chat/completions}, OpenAI's shape plus vLLM's sampling extensions
 * ({@code top_k}, {@code repetition_penalty}) and this gateway's {@code session_id}. Every field may
 * be absent (null); unknown fields are ignored.
 *
 * @param model echoed nowhere: any value is accepted and the response names the served model
 * @param messages the conversation, oldest first
 * @param stream answer as Server-Sent Events
 * @param streamOptions {@code include_usage}: one more chunk with the usage before {@code [DONE]}
 * @param maxTokens most tokens to generate (the end token included); default: the model's
 *     generation config ({@code max_new_tokens})
 * @param maxCompletionTokens OpenAI's newer name for {@code max_tokens}; must agree when both are set
 * @param temperature logit divisor, >= 0; 0 is greedy decoding
 * @param topP nucleus mass in (0, 1]
 * @param topK keep the k most likely tokens; 0 or -1 turns it off
 * @param repetitionPenalty HF repetition penalty, > 0; 1 turns it off
 * @param seed sampling seed; absent: the server draws one
 * @param stop up to a few strings (or one string) that end the reply; the match is not returned
 * @param logprobs return the logprob of each generated token
 * @param topLogprobs alternatives per token, 0..20; needs {@code logprobs}
 * @param n choices per request; only 1 is served
 * @param user the end user's id in OpenAI's API; ignored
 * @param sessionId a server-side session to continue (same as the {@code X-Session-Id} header)
 */
@JsonIgnoreProperties(ignoreUnknown = true)
public record ChatCompletionRequest(
        String model,
        List<Message> messages,
        Boolean stream,
        @JsonProperty("stream_options") StreamOptions streamOptions,
        @JsonProperty("max_tokens") Integer maxTokens,
        @JsonProperty("max_completion_tokens") Integer maxCompletionTokens,
        Double temperature,
        @JsonProperty("top_p") Double topP,
        @JsonProperty("top_k") Integer topK,
        @JsonProperty("repetition_penalty") Double repetitionPenalty,
        Long seed,
        @JsonFormat(with = JsonFormat.Feature.ACCEPT_SINGLE_VALUE_AS_ARRAY) List<String> stop,
        Boolean logprobs,
        @JsonProperty("top_logprobs") Integer topLogprobs,
        Integer n,
        String user,
        @JsonProperty("session_id") String sessionId) {

    /**
     * One message.
     *
     * @param role "system", "user" or "assistant"
     * @param content a string, or an array of {@code {"type": "text", "text": ...}} parts that are
     *     joined; null counts as ""
     */
    @JsonIgnoreProperties(ignoreUnknown = true)
    public record Message(String role, JsonNode content) {
    }

    /** @param includeUsage send a usage chunk (empty choices) before {@code data: [DONE]} */
    @JsonIgnoreProperties(ignoreUnknown = true)
    public record StreamOptions(@JsonProperty("include_usage") Boolean includeUsage) {
    }
}
