package qwen.service.sampling;

/**
 * How the next token is chosen (SPEC section 6).
 *
 * @param greedy arg-max instead of sampling (the repetition penalty still applies first)
 * @param temperature divides logits before top-k/top-p; 0 means greedy; 1 leaves them as they are
 * @param topK keep the k most probable tokens (ties kept); 0 disables
 * @param topP keep the smallest most-probable set whose mass reaches topP; 1 disables; in (0, 1]
 * @param repetitionPenalty for every id seen (prompt included): positive logits divided by it,
 *     negative ones multiplied; 1 disables
 * @param seed seed of the sequence's random generator; the same seed gives the same tokens
 * @param topLogprobs how many most probable alternatives to report per token, 0..20
 */
public record SamplingParams(
        boolean greedy,
        float temperature,
        int topK,
        float topP,
        float repetitionPenalty,
        long seed,
        int topLogprobs) {

    /** Largest topLogprobs accepted. */
    public static final int MAX_TOP_LOGPROBS = 20;

    public SamplingParams {
        if (!(temperature >= 0) || Float.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature must be >= 0, got " + temperature);
        }
        if (topK < 0) {
            throw new IllegalArgumentException("top_k must be >= 0 (0 = off), got " + topK);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("top_p must be in (0, 1], got " + topP);
        }
        if (!(repetitionPenalty > 0) || Float.isInfinite(repetitionPenalty)) {
            throw new IllegalArgumentException("repetition_penalty must be > 0, got " + repetitionPenalty);
        }
        if (topLogprobs < 0 || topLogprobs > MAX_TOP_LOGPROBS) {
            throw new IllegalArgumentException("top_logprobs must be in 0.." + MAX_TOP_LOGPROBS + ", got " + topLogprobs);
        }
    }

    /** Plain greedy decoding, no penalty: the mode of Qwen's own evaluation (SPEC 5.5). */
    public static SamplingParams greedy(int topLogprobs) {
        return new SamplingParams(true, 1f, 0, 1f, 1f, 0, topLogprobs);
    }

    /** Whether the choice is an arg-max (greedy flag or temperature 0). */
    public boolean isArgMax() {
        return greedy || temperature == 0f;
    }
}
