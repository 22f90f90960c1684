package qwen.gateway.grpc;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import qwen.gateway.chat.ChatMessage;
import qwen.gateway.chat.GatewayException;
import qwen.gateway.chat.RequestedParams;
import qwen.proto.chat.v1.ChatRequest;
import qwen.proto.chat.v1.GenerationParams;

/**
 * Reads qwen.chat.v1 requests into the gateway's types, refusing malformed ones with
 * INVALID_ARGUMENT naming the field. Range checks of generation parameters are
 * {@link qwen.gateway.chat.GenerationSettings#resolve}'s; this class only keeps "unset" apart from 0.
 */
final class ChatRequests {

    /** Longest ChatRequest.request_id, in UTF-8 bytes. */
    static final int MAX_REQUEST_ID_BYTES = 128;

    private ChatRequests() {
    }

    /** Checks the shape of a Chat request: exactly one mode, and the fields that mode needs. */
    static void checkShape(ChatRequest request) {
        boolean session = !request.getSessionId().isEmpty();
        boolean stateless = request.getMessagesCount() > 0;
        if (session == stateless) {
            throw GatewayException.invalid("session_id, messages: set exactly one (session_id for a session's"
                    + " next turn, messages for a stateless conversation); " + (session ? "both are" : "neither is")
                    + " set");
        }
        if (session && request.getUserMessage().isEmpty()) {
            throw GatewayException.invalid("user_message: must not be empty in session mode");
        }
        if (stateless && !request.getUserMessage().isEmpty()) {
            throw GatewayException.invalid("user_message: must be empty in stateless mode; put the user message"
                    + " last in messages");
        }
        if (request.getRequestId().getBytes(StandardCharsets.UTF_8).length > MAX_REQUEST_ID_BYTES) {
            throw GatewayException.invalid("request_id: at most " + MAX_REQUEST_ID_BYTES + " bytes");
        }
    }

    /**
     * The messages of a stateless Chat or a Tokenize request.
     *
     * @param systemPromptSet whether the request's system_prompt is set; it may not be combined
     *     with a ROLE_SYSTEM message
     */
    static List<ChatMessage> messages(List<qwen.proto.chat.v1.ChatMessage> messages, boolean systemPromptSet) {
        List<ChatMessage> read = new ArrayList<>(messages.size());
        for (int i = 0; i < messages.size(); i++) {
            qwen.proto.chat.v1.ChatMessage message = messages.get(i);
            ChatMessage.Role role = switch (message.getRole()) {
                case ROLE_SYSTEM -> ChatMessage.Role.SYSTEM;
                case ROLE_USER -> ChatMessage.Role.USER;
                case ROLE_ASSISTANT -> ChatMessage.Role.ASSISTANT;
                case ROLE_UNSPECIFIED, UNRECOGNIZED -> throw GatewayException.invalid("messages[" + i + "].role: must"
                        + " be ROLE_SYSTEM, ROLE_USER or ROLE_ASSISTANT, got " + message.getRoleValue());
            };
            if (role == ChatMessage.Role.SYSTEM && systemPromptSet) {
                throw GatewayException.invalid("system_prompt: must not be set when messages has a ROLE_SYSTEM"
                        + " message (messages[" + i + "])");
            }
            read.add(new ChatMessage(role, message.getContent()));
        }
        return read;
    }

    /** The parameters as the client gave them; unset optional fields become null. */
    static RequestedParams params(GenerationParams p) {
        return new RequestedParams(
                p.hasMaxNewTokens() ? clampUnsigned(p.getMaxNewTokens()) : null,
                p.hasTemperature() ? p.getTemperature() : null,
                p.hasTopP() ? p.getTopP() : null,
                p.hasTopK() ? clampUnsigned(p.getTopK()) : null,
                p.hasRepetitionPenalty() ? p.getRepetitionPenalty() : null,
                p.hasSeed() ? p.getSeed() : null,
                List.copyOf(p.getStopList()),
                p.getLogprobs(),
                clampUnsigned(p.getTopLogprobs()),
                p.getGreedy());
    }

    /** A uint32 as an int; values past Integer.MAX_VALUE stay out of range instead of turning negative. */
    private static int clampUnsigned(int uint32) {
        return uint32 < 0 ? Integer.MAX_VALUE : uint32;
    }
}
