package qwen.gateway.chat;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * A conversation in the shape make_context takes (SPEC 5.2): a system prompt, finished
 * (user, assistant) turns, and the new user query.
 */
public record Conversation(String systemPrompt, List<Turn> history, String query) {

    public Conversation {
        history = history == null ? List.of() : List.copyOf(history);
    }

    /**
     * Reads a client's message list: an optional system message first, then alternating user and
     * assistant messages, ending with the user message to answer.
     *
     * <p>Without a system message or override the system prompt is Qwen's default,
     * {@link ChatTemplate#DEFAULT_SYSTEM_PROMPT}. A null content counts as empty; only user
     * messages must have content.
     *
     * @param systemOverride replaces the system message when not null
     * @throws GatewayException INVALID_ARGUMENT saying which message breaks which rule
     */
    public static Conversation fromMessages(List<ChatMessage> messages, String systemOverride) {
        if (messages == null || messages.isEmpty()) {
            throw GatewayException.invalid("messages must hold at least one user message");
        }
        int next = 0;
        String system = ChatTemplate.DEFAULT_SYSTEM_PROMPT;
        if (role(messages, 0) == ChatMessage.Role.SYSTEM) {
            system = content(messages.getFirst());
            next = 1;
        }
        if (systemOverride != null) {
            system = systemOverride;
        }
        List<Turn> history = new ArrayList<>();
        String pendingUser = null;
        for (int i = next; i < messages.size(); i++) {
            ChatMessage.Role role = role(messages, i);
            ChatMessage.Role expected = pendingUser == null ? ChatMessage.Role.USER : ChatMessage.Role.ASSISTANT;
            if (role == ChatMessage.Role.SYSTEM) {
                throw GatewayException.invalid("messages[" + i + "] is a system message; only the first message may be one");
            }
            if (role != expected) {
                throw GatewayException.invalid("messages[" + i + "] must be " + (expected == ChatMessage.Role.USER
                        ? "a user" : "an assistant") + " message, got "
                        + name(role) + ": after the optional system message, user and assistant messages alternate,"
                        + " starting with user");
            }
            String content = content(messages.get(i));
            if (role == ChatMessage.Role.USER) {
                if (content.isEmpty()) {
                    throw GatewayException.invalid("messages[" + i + "] is a user message with empty content");
                }
                pendingUser = content;
            } else {
                history.add(new Turn(pendingUser, content));
                pendingUser = null;
            }
        }
        if (pendingUser == null) {
            throw GatewayException.invalid(next == messages.size()
                    ? "messages holds only a system message; the last message must be from the user"
                    : "the last message must be from the user, got " + name(role(messages, messages.size() - 1)));
        }
        return new Conversation(system, history, pendingUser);
    }

    private static ChatMessage.Role role(List<ChatMessage> messages, int i) {
        ChatMessage message = messages.get(i);
        if (message == null || message.role() == null) {
            throw GatewayException.invalid("messages[" + i + "] has no role");
        }
        return message.role();
    }

    private static String content(ChatMessage message) {
        return message.content() == null ? "" : message.content();
    }

    private static String name(ChatMessage.Role role) {
        return role.name().toLowerCase(Locale.ROOT);
    }
}
