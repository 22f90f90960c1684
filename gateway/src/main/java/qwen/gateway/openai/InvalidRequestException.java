package qwen.gateway.openai;

/**
 * A request this adapter refuses before anything runs: HTTP 400 with {@code invalid_request_error},
 * naming the field in OpenAI's spelling. Thrown before any state changes.
 */
final class InvalidRequestException extends RuntimeException {

    private final String param;
    private final String code;

    /**
     * @param param the field at fault, as the client spelt it ({@code messages[2].content}), or null
     * @param code a stable error code, or null
     */
    InvalidRequestException(String param, String code, String message) {
        super(message);
        this.param = param;
        this.code = code;
    }

    static InvalidRequestException of(String param, String message) {
        return new InvalidRequestException(param, null, message);
    }

    String param() {
        return param;
    }

    String code() {
        return code;
    }
}
