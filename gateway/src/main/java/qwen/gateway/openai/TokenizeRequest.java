package qwen.gateway.openai;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.List;

/**
 * Body of {@code POST /tokenize} (vLLM's shape): exactly one of {@code prompt} and
 * {@code messages}.
 *
 * @param prompt text, encoded as {@code /v1/completions} encodes a prompt (special-token text is
 *     recognised)
 * @param messages a conversation, encoded as the ChatML prompt {@code /v1/chat/completions} would
 *     send (ending with {@code <|im_start|>assistant\n})
 * @param addGenerationPrompt accepted for vLLM compatibility and ignored: the ChatML prompt always
 *     ends with the assistant header
 */
@JsonIgnoreProperties(ignoreUnknown = true)
public record TokenizeRequest(
        String model,
        String prompt,
        List<ChatCompletionRequest.Message> messages,
        @JsonProperty("add_generation_prompt") Boolean addGenerationPrompt) {
}
