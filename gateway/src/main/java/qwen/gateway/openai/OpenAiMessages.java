package qwen.gateway.openai;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import qwen.gateway.chat.ChatMessage;

/** Reads OpenAI's {@code messages} array: roles, and content as a string or as text parts. */
final class OpenAiMessages {

    private OpenAiMessages() {
    }

    /**
     * The messages in the gateway's shape, checked one by one (order rules are checked by
     * {@link qwen.gateway.chat.Conversation#fromMessages}).
     *
     * @throws InvalidRequestException naming the message and the rule
     */
    static List<ChatMessage> read(List<ChatCompletionRequest.Message> messages) {
        if (messages == null || messages.isEmpty()) {
            throw InvalidRequestException.of("messages",
                    "messages must hold at least one message, the last one from the user");
        }
        List<ChatMessage> out = new ArrayList<>(messages.size());
        for (int i = 0; i < messages.size(); i++) {
            ChatCompletionRequest.Message message = messages.get(i);
            if (message == null) {
                throw InvalidRequestException.of("messages[" + i + "]", "messages[" + i + "] is null; send an object"
                        + " with role and content");
            }
            out.add(new ChatMessage(role(message.role(), i), content(message.content(), i)));
        }
        return out;
    }

    /**
     * The new user message of a session turn: the last message, which must be from the user.
     *
     * @throws InvalidRequestException when the last message is not a user message
     */
    static String lastUserMessage(List<ChatMessage> messages) {
        ChatMessage last = messages.getLast();
        int index = messages.size() - 1;
        if (last.role() != ChatMessage.Role.USER) {
            throw InvalidRequestException.of("messages[" + index + "].role", "with a session, the last message is"
                    + " the new user turn, but messages[" + index + "] is from the "
                    + last.role().name().toLowerCase(Locale.ROOT));
        }
        if (last.content().isEmpty()) {
            throw InvalidRequestException.of("messages[" + index + "].content",
                    "messages[" + index + "] is a user message with empty content");
        }
        return last.content();
    }

    private static ChatMessage.Role role(String role, int i) {
        String param = "messages[" + i + "].role";
        if (role == null) {
            throw InvalidRequestException.of(param, param + " is missing; use \"system\", \"user\" or \"assistant\"");
        }
        return switch (role) {
            case "system" -> ChatMessage.Role.SYSTEM;
            case "user" -> ChatMessage.Role.USER;
            case "assistant" -> ChatMessage.Role.ASSISTANT;
            default -> throw InvalidRequestException.of(param, param + " is \"" + role
                    + "\"; this server supports only \"system\", \"user\" and \"assistant\"");
        };
    }

    /** A string as it is; text parts joined with "\n", as vLLM joins them; null as "". */
    private static String content(JsonNode content, int i) {
        String param = "messages[" + i + "].content";
        if (content == null || content.isNull()) {
            return "";
        }
        if (content.isTextual()) {
            return content.textValue();
        }
        if (!content.isArray()) {
            throw InvalidRequestException.of(param, param + " must be a string or an array of"
                    + " {\"type\": \"text\", \"text\": ...} parts, got " + content.getNodeType().name().toLowerCase(Locale.ROOT));
        }
        StringBuilder text = new StringBuilder();
        for (int j = 0; j < content.size(); j++) {
            JsonNode part = content.get(j);
            String partParam = param + "[" + j + "]";
            String type = part.path("type").asText("");
            if (!"text".equals(type)) {
                throw InvalidRequestException.of(partParam, partParam + " has type \"" + type
                        + "\"; only \"text\" parts are supported by this text-only model");
            }
            if (!part.path("text").isTextual()) {
                throw InvalidRequestException.of(partParam + ".text", partParam + ".text must be a string");
            }
            if (j > 0) {
                text.append('\n');
            }
            text.append(part.get("text").textValue());
        }
        return text.toString();
    }
}
