package qwen.gateway.openai;

import com.fasterxml.jackson.annotation.JsonInclude;

/**
 * OpenAI's error body: {@code {"error": {"message", "type", "param", "code"}}}. {@code param} and
 * {@code code} are JSON null when they do not apply, as OpenAI sends them.
 */
public record OpenAiError(Body error) {

    /**
     * @param message what is wrong and what to change, for a person
     * @param type OpenAI's error class: {@code invalid_request_error}, {@code not_found_error},
     *     {@code conflict_error}, {@code rate_limit_exceeded}, {@code server_error}
     * @param param the request field at fault (dotted path such as {@code messages[1].role}), or null
     * @param code a stable machine-readable code such as {@code context_length_exceeded}, or null
     */
    @JsonInclude(JsonInclude.Include.ALWAYS)
    public record Body(String message, String type, String param, String code) {
    }

    public static OpenAiError of(String message, String type, String param, String code) {
        return new OpenAiError(new Body(message, type, param, code));
    }
}
