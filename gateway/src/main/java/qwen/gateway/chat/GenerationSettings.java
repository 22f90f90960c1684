package qwen.gateway.chat;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Fully resolved settings of one generation: every value set and in range.
 *
 * @param maxNewTokens most tokens to generate, >= 1
 * @param greedy arg-max decoding (also when temperature is 0)
 * @param temperature in [0, 100]
 * @param topK 0 = off
 * @param topP in (0, 1]
 * @param repetitionPenalty > 0, 1 = off
 * @param seed the sequence's sampling seed (drawn by the gateway when the client gave none)
 * @param stop stop strings: the reply ends before the first match
 * @param logprobs report a logprob per generated token
 * @param topLogprobs alternatives per token, 0..20
 */
public record GenerationSettings(
        int maxNewTokens,
        boolean greedy,
        float temperature,
        int topK,
        float topP,
        float repetitionPenalty,
        long seed,
        List<String> stop,
        boolean logprobs,
        int topLogprobs) {

    /** Highest temperature accepted (the public contract's range); beyond it sampling is uniform noise. */
    public static final float MAX_TEMPERATURE = 100f;

    /** Most stop strings per request. */
    public static final int MAX_STOP_STRINGS = 16;

    /** Most UTF-8 bytes per stop string. */
    public static final int MAX_STOP_BYTES = 256;

    public GenerationSettings {
        stop = stop == null ? List.of() : List.copyOf(stop);
    }

    /**
     * Applies the model's defaults to what the client gave, and checks ranges. Messages name the
     * field as the gRPC API spells it (adapters with other spellings check their own first).
     *
     * @throws GatewayException INVALID_ARGUMENT naming the field and the rule
     */
    public static GenerationSettings resolve(RequestedParams p, GenerationDefaults defaults) {
        int maxNewTokens = p.maxNewTokens() != null ? p.maxNewTokens() : defaults.maxNewTokens();
        if (maxNewTokens < 1) {
            throw GatewayException.invalid("max_new_tokens must be >= 1, got " + maxNewTokens);
        }
        float temperature = p.temperature() != null ? p.temperature() : (float) defaults.temperature();
        if (!(temperature >= 0 && temperature <= MAX_TEMPERATURE)) {
            throw GatewayException.invalid("temperature must be in [0, " + (int) MAX_TEMPERATURE + "], got " + temperature);
        }
        float topP = p.topP() != null ? p.topP() : (float) defaults.topP();
        if (!(topP > 0 && topP <= 1)) {
            throw GatewayException.invalid("top_p must be in (0, 1], got " + topP);
        }
        int topK = p.topK() != null ? p.topK() : defaults.topK();
        if (topK < 0) {
            throw GatewayException.invalid("top_k must be >= 0, got " + topK);
        }
        float penalty = p.repetitionPenalty() != null ? p.repetitionPenalty() : (float) defaults.repetitionPenalty();
        if (!(penalty > 0) || Float.isInfinite(penalty)) {
            throw GatewayException.invalid("repetition_penalty must be > 0, got " + penalty);
        }
        if (p.topLogprobs() < 0 || p.topLogprobs() > 20) {
            throw GatewayException.invalid("top_logprobs must be in [0, 20], got " + p.topLogprobs());
        }
        if (p.topLogprobs() > 0 && !p.logprobs()) {
            throw GatewayException.invalid("top_logprobs needs logprobs to be true, got top_logprobs "
                    + p.topLogprobs() + " with logprobs false");
        }
        List<String> stop = checkStop(p.stop() == null ? List.of() : p.stop());
        // The model's config decides sampling versus greedy unless the client sets a temperature.
        boolean greedy = p.greedy() || temperature == 0 || (!defaults.doSample() && p.temperature() == null);
        long seed = p.seed() != null ? p.seed() : ThreadLocalRandom.current().nextLong() & Long.MAX_VALUE;
        return new GenerationSettings(maxNewTokens, greedy, temperature, topK, topP, penalty, seed, stop,
                p.logprobs(), p.topLogprobs());
    }

    private static List<String> checkStop(List<String> stop) {
        if (stop.size() > MAX_STOP_STRINGS) {
            throw GatewayException.invalid("stop may hold at most " + MAX_STOP_STRINGS + " strings, got " + stop.size());
        }
        for (int i = 0; i < stop.size(); i++) {
            String s = stop.get(i);
            int bytes = s == null ? 0 : s.getBytes(StandardCharsets.UTF_8).length;
            if (bytes < 1 || bytes > MAX_STOP_BYTES) {
                throw GatewayException.invalid("stop[" + i + "] must be 1 to " + MAX_STOP_BYTES
                        + " bytes of UTF-8, got " + bytes);
            }
        }
        return List.copyOf(stop);
    }
}
