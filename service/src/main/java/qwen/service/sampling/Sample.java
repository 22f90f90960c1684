package qwen.service.sampling;

import java.util.List;

/**
 * The outcome of one sampling step.
 *
 * @param id the chosen token
 * @param logprob its log-probability under the raw logits
 * @param top the most probable tokens under the raw logits, best first (as many as asked for)
 */
public record Sample(int id, float logprob, List<TokenLogprob> top) {
}
