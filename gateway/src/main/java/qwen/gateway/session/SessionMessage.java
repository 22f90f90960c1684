package qwen.gateway.session;

import java.time.Instant;
import java.util.Objects;
import qwen.gateway.chat.ChatMessage;

/**
 * One committed message of a session's history.
 *
 * @param role {@link ChatMessage.Role#USER} or {@link ChatMessage.Role#ASSISTANT}; the system
 *     prompt lives in {@link Session#systemPrompt()}, not in the history
 * @param content the message text; for a reply, the generated text stripped of leading and trailing
 *     whitespace, as Qwen's {@code chat()} returns it
 * @param tokenCount tokens of {@code content} encoded alone (no ChatML framing), >= 0
 * @param createTime when the message was committed to the session
 */
public record SessionMessage(ChatMessage.Role role, String content, int tokenCount, Instant createTime) {

    public SessionMessage {
        Objects.requireNonNull(role, "role");
        Objects.requireNonNull(content, "content");
        Objects.requireNonNull(createTime, "createTime");
        if (role == ChatMessage.Role.SYSTEM) {
            throw new IllegalArgumentException("the system prompt is not a history message");
        }
        if (tokenCount < 0) {
            throw new IllegalArgumentException("tokenCount must be >= 0, got " + tokenCount);
        }
    }
}
