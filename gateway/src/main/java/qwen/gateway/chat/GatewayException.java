package qwen.gateway.chat;

/**
 * A request the gateway refuses or cannot finish, with a message a person can act on. Adapters
 * map the kind to a gRPC status (same name) or an HTTP status ({@link Kind#httpStatus()}).
 */
public final class GatewayException extends RuntimeException {

    /** What went wrong, named after the gRPC status code it maps to. */
    public enum Kind {
        INVALID_ARGUMENT(400),
        NOT_FOUND(404),
        ALREADY_EXISTS(409),
        FAILED_PRECONDITION(409),
        RESOURCE_EXHAUSTED(429),
        UNAVAILABLE(503),
        INTERNAL(500);

        private final int httpStatus;

        Kind(int httpStatus) {
            this.httpStatus = httpStatus;
        }

        public int httpStatus() {
            return httpStatus;
        }
    }

    private final Kind kind;

    public GatewayException(Kind kind, String message) {
        super(message);
        this.kind = kind;
    }

    public Kind kind() {
        return kind;
    }

    public static GatewayException invalid(String message) {
        return new GatewayException(Kind.INVALID_ARGUMENT, message);
    }

    public static GatewayException notFound(String message) {
        return new GatewayException(Kind.NOT_FOUND, message);
    }
}
