package qwen.gateway.chat;

/** One message of a conversation as clients send it. */
public record ChatMessage(Role role, String content) {

    /** Who wrote a message. */
    public enum Role {
        SYSTEM, USER, ASSISTANT
    }
}
