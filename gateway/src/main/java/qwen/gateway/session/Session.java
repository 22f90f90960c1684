package qwen.gateway.session;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import qwen.gateway.chat.ChatMessage;
import qwen.gateway.chat.Turn;

/**
 * A conversation the server keeps: its settings and its committed history. The history is the
 * source of truth; the KV cache the shards hold for {@link #sequenceId()} is only a cache of it.
 *
 * @param id opaque URL-safe id, assigned by the store at creation
 * @param title for display; "" when none was given
 * @param metadata client data, stored and returned unchanged
 * @param systemPrompt the system prompt every turn starts with ("" renders an empty system block)
 * @param createTime when the session was created
 * @param updateTime when a turn was last committed (createTime until then)
 * @param messages committed history, oldest first, alternating user and assistant
 * @param sequenceId the KV identity on the shards, stable for the session's life, so that the next
 *     turn reuses the positions its earlier turns left there
 */
public record Session(
        String id,
        String title,
        Map<String, String> metadata,
        String systemPrompt,
        Instant createTime,
        Instant updateTime,
        List<SessionMessage> messages,
        String sequenceId) {

    private static final String SEQUENCE_PREFIX = "session-";

    public Session {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(title, "title");
        Objects.requireNonNull(systemPrompt, "systemPrompt");
        Objects.requireNonNull(createTime, "createTime");
        Objects.requireNonNull(updateTime, "updateTime");
        Objects.requireNonNull(sequenceId, "sequenceId");
        metadata = Map.copyOf(metadata);
        messages = List.copyOf(messages);
    }

    /** The sequence id a session with this id uses on the shards. */
    public static String sequenceIdFor(String sessionId) {
        return SEQUENCE_PREFIX + sessionId;
    }

    /** The session whose KV a sequence id names, or empty for the sequences of stateless requests. */
    public static Optional<String> sessionIdOf(String sequenceId) {
        return sequenceId.startsWith(SEQUENCE_PREFIX)
                ? Optional.of(sequenceId.substring(SEQUENCE_PREFIX.length())) : Optional.empty();
    }

    /** The history as make_context takes it: (user, assistant) pairs, oldest first. */
    public List<Turn> turns() {
        List<Turn> turns = new ArrayList<>(messages.size() / 2);
        for (int i = 0; i + 1 < messages.size(); i += 2) {
            SessionMessage user = messages.get(i);
            SessionMessage assistant = messages.get(i + 1);
            if (user.role() != ChatMessage.Role.USER || assistant.role() != ChatMessage.Role.ASSISTANT) {
                throw new IllegalStateException("session " + id + ": history does not alternate user and"
                        + " assistant at message " + i);
            }
            turns.add(new Turn(user.content(), assistant.content()));
        }
        return turns;
    }

    /** This session with one more turn committed at {@code time}. */
    public Session withTurn(SessionMessage user, SessionMessage assistant, Instant time) {
        List<SessionMessage> longer = new ArrayList<>(messages.size() + 2);
        longer.addAll(messages);
        longer.add(user);
        longer.add(assistant);
        return new Session(id, title, metadata, systemPrompt, createTime, time, longer, sequenceId);
    }
}
