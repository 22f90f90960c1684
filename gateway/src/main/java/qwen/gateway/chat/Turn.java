package qwen.gateway.chat;

import java.util.Objects;

/**
 * One earlier exchange of a conversation: what the user said and what the assistant answered.
 *
 * @param user the user's message, as sent
 * @param assistant the assistant's reply, as it was returned to the client
 */
public record Turn(String user, String assistant) {

    public Turn {
        Objects.requireNonNull(user, "user");
        Objects.requireNonNull(assistant, "assistant");
    }
}
