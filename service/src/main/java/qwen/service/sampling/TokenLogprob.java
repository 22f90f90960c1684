package qwen.service.sampling;

/**
 * A token and its natural-log probability under the softmax of the raw logits (before any
 * penalty, temperature or truncation: what the model itself assigned).
 */
public record TokenLogprob(int id, float logprob) {
}
