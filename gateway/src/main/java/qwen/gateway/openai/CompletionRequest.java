package qwen.gateway.openai;

import com.fasterxml.jackson.annotation.JsonFormat;
import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;

/**
 * Body of {@code POST /v1/completions} (OpenAI's legacy text completion, as vLLM serves it). The
 * prompt is sent to the model as it is, without ChatML. Null means absent; unknown fields are
 * ignored.
 *
 * @param prompt a string (special-token text such as {@code <|im_start|>} becomes the special id),
 *     or an array of token ids; a one-element array of either is accepted too
 * @param logprobs number of alternatives per token (0..20) in the legacy logprobs shape; absent: no
 *     logprobs
 * @param echo only false: the prompt is never repeated in the answer
 * @see ChatCompletionRequest for the sampling fields, which mean the same here
 */
@JsonIgnoreProperties(ignoreUnknown = true)
public record CompletionRequest(
        String model,
        JsonNode prompt,
        Boolean stream,
        @JsonProperty("stream_options") ChatCompletionRequest.StreamOptions streamOptions,
        @JsonProperty("max_tokens") Integer maxTokens,
        Double temperature,
        @JsonProperty("top_p") Double topP,
        @JsonProperty("top_k") Integer topK,
        @JsonProperty("repetition_penalty") Double repetitionPenalty,
        Long seed,
        @JsonFormat(with = JsonFormat.Feature.ACCEPT_SINGLE_VALUE_AS_ARRAY) List<String> stop,
        Integer logprobs,
        Boolean echo,
        Integer n,
        String user) {
}
