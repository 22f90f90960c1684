package qwen.gateway.openai;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.exc.StreamReadException;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.exc.InvalidFormatException;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import jakarta.ws.rs.NotSupportedException;
import jakarta.ws.rs.WebApplicationException;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import java.util.List;
import java.util.concurrent.CompletionException;
import org.jboss.logging.Logger;
import qwen.gateway.chat.GatewayException;

/**
 * Turns every failure of an OpenAI endpoint into OpenAI's error JSON with a fitting HTTP status:
 * the adapter's own validation (400), {@link GatewayException} by its kind (400, 404, 409, 429,
 * 503, 500), Jackson's parse and type errors (400, naming the field), and JAX-RS errors such as 415.
 * 429 and 503 carry {@code Retry-After}.
 */
final class OpenAiErrors {

    private static final Logger LOG = Logger.getLogger(OpenAiErrors.class);

    /** Seconds a client should wait after 429: the queue drains within a few decode steps. */
    static final int RETRY_AFTER_FULL_SECONDS = 1;
    /** Seconds a client should wait after 503: a shard reconnecting or loading its weights. */
    static final int RETRY_AFTER_UNAVAILABLE_SECONDS = 5;

    private OpenAiErrors() {
    }

    /** The HTTP response for {@code failure}. */
    static Response toResponse(Throwable failure) {
        Throwable cause = unwrap(failure);
        return switch (cause) {
            case InvalidRequestException e -> response(400, OpenAiError.of(e.getMessage(),
                    "invalid_request_error", e.param(), e.code()));
            case GatewayException e -> fromGateway(e);
            case JsonProcessingException e -> response(400, fromJackson(e));
            case WebApplicationException e when unwrap(e.getCause()) instanceof JsonProcessingException json ->
                    response(400, fromJackson(json));
            case NotSupportedException e -> response(415, OpenAiError.of("Content-Type must be application/json",
                    "invalid_request_error", null, "unsupported_media_type"));
            case WebApplicationException e -> {
                int status = e.getResponse().getStatus();
                yield response(status, OpenAiError.of(e.getMessage(), typeFor(status), null, null));
            }
            default -> {
                LOG.error("OpenAI endpoint failed", cause);
                yield response(500, OpenAiError.of("internal error: " + cause, "server_error", null, null));
            }
        };
    }

    /** The error body alone, for an error that happens after a stream has begun. */
    static OpenAiError body(Throwable failure) {
        Throwable cause = unwrap(failure);
        if (cause instanceof GatewayException e) {
            return OpenAiError.of(e.getMessage(), typeFor(e.kind().httpStatus()), null, codeFor(e.kind()));
        }
        LOG.error("OpenAI stream failed after its first event", cause);
        return OpenAiError.of("internal error: " + cause, "server_error", null, null);
    }

    private static Response fromGateway(GatewayException e) {
        int status = e.kind().httpStatus();
        Response.ResponseBuilder builder = Response.status(status).type(MediaType.APPLICATION_JSON_TYPE)
                .entity(OpenAiError.of(e.getMessage(), typeFor(status), null, codeFor(e.kind())));
        if (status == 429) {
            builder.header("Retry-After", RETRY_AFTER_FULL_SECONDS);
        } else if (status == 503) {
            builder.header("Retry-After", RETRY_AFTER_UNAVAILABLE_SECONDS);
        }
        return builder.build();
    }

    private static OpenAiError fromJackson(JsonProcessingException e) {
        String location = e.getLocation() == null ? ""
                : " (line " + e.getLocation().getLineNr() + ", column " + e.getLocation().getColumnNr() + ")";
        // Databind wraps a syntax error met inside a field in a JsonMappingException with a path.
        for (Throwable cause = e; cause != null; cause = cause.getCause()) {
            if (cause instanceof StreamReadException syntax) {
                return OpenAiError.of("The request body is not valid JSON: " + syntax.getOriginalMessage()
                        + location, "invalid_request_error", null, "invalid_json");
            }
        }
        if (e instanceof MismatchedInputException mismatch && !mismatch.getPath().isEmpty()) {
            String param = path(mismatch.getPath());
            String expected = mismatch.getTargetType() == null ? "another type"
                    : jsonTypeOf(mismatch.getTargetType());
            String got = mismatch instanceof InvalidFormatException format
                    ? " but got " + format.getValue() : "";
            return OpenAiError.of("'" + param + "' must be " + expected + got + location,
                    "invalid_request_error", param, "invalid_type");
        }
        if (e instanceof JsonMappingException mapping && !mapping.getPath().isEmpty()) {
            String param = path(mapping.getPath());
            return OpenAiError.of("'" + param + "' is invalid: " + e.getOriginalMessage() + location,
                    "invalid_request_error", param, null);
        }
        return OpenAiError.of("The request body is not valid JSON: " + e.getOriginalMessage() + location,
                "invalid_request_error", null, "invalid_json");
    }

    /** {@code messages[1].content} from Jackson's reference path. */
    private static String path(List<JsonMappingException.Reference> references) {
        StringBuilder out = new StringBuilder();
        for (JsonMappingException.Reference reference : references) {
            if (reference.getFieldName() != null) {
                if (!out.isEmpty()) {
                    out.append('.');
                }
                out.append(reference.getFieldName());
            } else if (reference.getIndex() >= 0) {
                out.append('[').append(reference.getIndex()).append(']');
            }
        }
        return out.toString();
    }

    private static String jsonTypeOf(Class<?> type) {
        if (type == Integer.class || type == int.class || type == Long.class || type == long.class) {
            return "an integer";
        }
        if (type == Float.class || type == float.class || type == Double.class || type == double.class) {
            return "a number";
        }
        if (type == Boolean.class || type == boolean.class) {
            return "true or false";
        }
        if (type == String.class) {
            return "a string";
        }
        if (List.class.isAssignableFrom(type) || type.isArray()) {
            return "an array";
        }
        return "an object";
    }

    private static String typeFor(int status) {
        return switch (status) {
            case 404 -> "not_found_error";
            case 409 -> "conflict_error";
            case 429 -> "rate_limit_exceeded";
            default -> status >= 500 ? "server_error" : "invalid_request_error";
        };
    }

    private static String codeFor(GatewayException.Kind kind) {
        return switch (kind) {
            case RESOURCE_EXHAUSTED -> "rate_limit_exceeded";
            case UNAVAILABLE -> "service_unavailable";
            default -> kind.name().toLowerCase(java.util.Locale.ROOT);
        };
    }

    private static Response response(int status, OpenAiError error) {
        return Response.status(status).type(MediaType.APPLICATION_JSON_TYPE).entity(error).build();
    }

    private static Throwable unwrap(Throwable failure) {
        Throwable current = failure;
        while ((current instanceof CompletionException
                || current instanceof io.smallrye.mutiny.CompositeException)
                && current.getCause() != null) {
            current = current.getCause();
        }
        return current;
    }
}
