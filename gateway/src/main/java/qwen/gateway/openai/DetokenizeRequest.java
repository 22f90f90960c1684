package qwen.gateway.openai;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import java.util.List;

/**
 * Body of {@code POST /detokenize} (vLLM's shape).
 *
 * @param tokens token ids, each in {@code [0, tokenizer vocabulary size)}; special tokens are shown
 *     as their text
 */
@JsonIgnoreProperties(ignoreUnknown = true)
public record DetokenizeRequest(String model, List<Integer> tokens) {
}
