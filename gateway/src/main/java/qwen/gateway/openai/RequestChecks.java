package qwen.gateway.openai;

import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import java.util.concurrent.ThreadLocalRandom;
import qwen.gateway.shard.ModelCard;

/** Checks shared by the OpenAI endpoints: the body itself, ids in headers, the context length. */
final class RequestChecks {

    /** As ChatRequest.request_id in the gRPC API. */
    static final int MAX_REQUEST_ID_BYTES = 128;

    private RequestChecks() {
    }

    /** @throws InvalidRequestException when the body was empty (Jackson reads an empty body as null) */
    static <T> T body(T body, String expected) {
        if (body == null) {
            throw InvalidRequestException.of(null, "The request body is empty; send a JSON object with " + expected);
        }
        return body;
    }

    /**
     * The client's {@code X-Request-Id}, or a new random id.
     *
     * @throws InvalidRequestException when the header is blank or longer than 128 bytes
     */
    static String requestId(String header) {
        if (header == null) {
            byte[] random = new byte[12];
            ThreadLocalRandom.current().nextBytes(random);
            return HexFormat.of().formatHex(random);
        }
        int bytes = header.getBytes(StandardCharsets.UTF_8).length;
        if (header.isBlank() || bytes > MAX_REQUEST_ID_BYTES) {
            throw InvalidRequestException.of("X-Request-Id", "the X-Request-Id header must be 1 to "
                    + MAX_REQUEST_ID_BYTES + " bytes, got " + bytes);
        }
        return header;
    }

    /**
     * The session a chat request continues: the {@code X-Session-Id} header or the body's
     * {@code session_id}; null for a stateless request.
     *
     * @throws InvalidRequestException when either is blank or they name different sessions
     */
    static String sessionId(String header, String field) {
        if (header != null && header.isBlank()) {
            throw InvalidRequestException.of("X-Session-Id", "the X-Session-Id header is empty; leave it out for a"
                    + " stateless request");
        }
        if (field != null && field.isBlank()) {
            throw InvalidRequestException.of("session_id", "session_id is empty; leave it out for a stateless request");
        }
        if (header != null && field != null && !header.equals(field)) {
            throw InvalidRequestException.of("session_id", "the X-Session-Id header (" + header
                    + ") and session_id (" + field + ") name different sessions; send one of them");
        }
        return header != null ? header : field;
    }

    /**
     * @throws InvalidRequestException {@code context_length_exceeded} when the prompt leaves no
     *     room for a reply in the model's context
     */
    static void fitsContext(int promptTokens, ModelCard card, String param) {
        if (promptTokens >= card.seqLength()) {
            throw new InvalidRequestException(param, "context_length_exceeded", "This model's maximum context"
                    + " length is " + card.seqLength() + " tokens, but the prompt has " + promptTokens
                    + " tokens and at least one token must be left for the reply; shorten the "
                    + param + ".");
        }
    }
}
