package qwen.gateway.openai;

import java.util.List;
import qwen.gateway.chat.RequestedParams;

/**
 * Reads the sampling fields of the OpenAI requests into {@link RequestedParams}, checking each range
 * with OpenAI's field names first (so the message names the field as the client spelt it). Absent
 * fields stay null and take the model's defaults later.
 */
final class OpenAiParams {

    /** vLLM's and OpenAI's limit on alternatives per token. */
    static final int MAX_TOP_LOGPROBS = 20;

    private OpenAiParams() {
    }

    /** The parameters of a chat completion. */
    static RequestedParams chat(ChatCompletionRequest r) {
        Integer maxTokens = r.maxTokens();
        if (r.maxCompletionTokens() != null) {
            checkMaxTokens("max_completion_tokens", r.maxCompletionTokens());
            if (maxTokens != null && !maxTokens.equals(r.maxCompletionTokens())) {
                throw InvalidRequestException.of("max_completion_tokens", "max_tokens (" + maxTokens
                        + ") and max_completion_tokens (" + r.maxCompletionTokens()
                        + ") disagree; send one of them");
            }
            maxTokens = r.maxCompletionTokens();
        }
        boolean logprobs = Boolean.TRUE.equals(r.logprobs());
        int topLogprobs = r.topLogprobs() == null ? 0 : r.topLogprobs();
        if (topLogprobs < 0 || topLogprobs > MAX_TOP_LOGPROBS) {
            throw InvalidRequestException.of("top_logprobs", "top_logprobs must be between 0 and "
                    + MAX_TOP_LOGPROBS + ", got " + topLogprobs);
        }
        if (r.topLogprobs() != null && !logprobs) {
            throw InvalidRequestException.of("top_logprobs",
                    "top_logprobs needs \"logprobs\": true; set logprobs or drop top_logprobs");
        }
        return common(r.n(), maxTokens, r.temperature(), r.topP(), r.topK(), r.repetitionPenalty(), r.seed(),
                r.stop(), logprobs, topLogprobs);
    }

    /** The parameters of a text completion; {@code logprobs} there is the number of alternatives. */
    static RequestedParams completion(CompletionRequest r) {
        if (Boolean.TRUE.equals(r.echo())) {
            throw InvalidRequestException.of("echo", "echo: true is not supported; send echo: false or leave it out");
        }
        Integer logprobs = r.logprobs();
        if (logprobs != null && (logprobs < 0 || logprobs > MAX_TOP_LOGPROBS)) {
            throw InvalidRequestException.of("logprobs", "logprobs (the number of alternatives per token) must be"
                    + " between 0 and " + MAX_TOP_LOGPROBS + ", got " + logprobs);
        }
        return common(r.n(), r.maxTokens(), r.temperature(), r.topP(), r.topK(), r.repetitionPenalty(), r.seed(),
                r.stop(), logprobs != null, logprobs == null ? 0 : logprobs);
    }

    private static RequestedParams common(Integer n, Integer maxTokens, Double temperature, Double topP, Integer topK,
                                          Double repetitionPenalty, Long seed, List<String> stop, boolean logprobs,
                                          int topLogprobs) {
        if (n != null && n != 1) {
            throw InvalidRequestException.of("n", "n must be 1: this server returns one choice per request, got " + n
                    + "; send several requests for several choices");
        }
        if (maxTokens != null) {
            checkMaxTokens("max_tokens", maxTokens);
        }
        if (temperature != null && !(temperature >= 0 && temperature < Double.POSITIVE_INFINITY)) {
            throw InvalidRequestException.of("temperature", "temperature must be >= 0 (0 is greedy decoding), got "
                    + temperature);
        }
        if (topP != null && !(topP > 0 && topP <= 1)) {
            throw InvalidRequestException.of("top_p", "top_p must be in (0, 1] (1 turns it off), got " + topP);
        }
        if (topK != null && topK < -1) {
            throw InvalidRequestException.of("top_k", "top_k must be -1 or 0 (off) or a number of tokens >= 1, got "
                    + topK);
        }
        if (repetitionPenalty != null && !(repetitionPenalty > 0 && repetitionPenalty < Double.POSITIVE_INFINITY)) {
            throw InvalidRequestException.of("repetition_penalty", "repetition_penalty must be > 0 (1 turns it off),"
                    + " got " + repetitionPenalty);
        }
        List<String> stops = stop == null ? List.of() : stop;
        for (int i = 0; i < stops.size(); i++) {
            if (stops.get(i) == null || stops.get(i).isEmpty()) {
                throw InvalidRequestException.of("stop[" + i + "]", "stop[" + i + "] must be a non-empty string");
            }
        }
        return new RequestedParams(
                maxTokens,
                temperature == null ? null : temperature.floatValue(),
                topP == null ? null : topP.floatValue(),
                topK == null ? null : Math.max(topK, 0),
                repetitionPenalty == null ? null : repetitionPenalty.floatValue(),
                seed,
                List.copyOf(stops),
                logprobs,
                topLogprobs,
                temperature != null && temperature == 0);
    }

    private static void checkMaxTokens(String field, int value) {
        if (value < 1) {
            throw InvalidRequestException.of(field, field + " must be at least 1, got " + value);
        }
    }
}
