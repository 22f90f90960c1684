package qwen.gateway.session;

import java.util.Map;
import java.util.Optional;

/**
 * Durable storage of sessions. Implementations are thread-safe; every method is blocking I/O, so
 * callers keep it off event-loop threads.
 */
public interface SessionStore {

    /**
     * Stores a new session with no messages and a fresh random id.
     *
     * @param title for display, "" for none
     * @param metadata client data, stored unchanged
     * @param systemPrompt the session's system prompt
     */
    Session create(String title, Map<String, String> metadata, String systemPrompt);

    /** The session with this id; empty when there is none (any string is a valid question). */
    Optional<Session> get(String id);

    /**
     * Lists sessions, most recently updated first (ties by id), without changing them.
     *
     * @param pageSize sessions per page, >= 1
     * @param pageToken "" for the first page, else a {@link SessionPage#nextPageToken()} of this
     *     store
     * @throws qwen.gateway.chat.GatewayException INVALID_ARGUMENT for a token this store did not issue
     */
    SessionPage list(int pageSize, String pageToken);

    /** Deletes a session; false when there was none. */
    boolean delete(String id);

    /**
     * Deletes a session and names the turn that held its lease ({@link #leaseTurn}) at that moment,
     * in the same atomic step: that turn's gateway sees the session gone when it gives the lease
     * back ({@link TurnLease#release()} returns true) and frees the turn's KV itself.
     *
     * @return empty when there was no session; else the request id of the turn whose lease was live
     *     when the session was deleted, or "" when none was (always "" for a store without leases)
     */
    default Optional<String> deleteNamingTurn(String id) {
        return delete(id) ? Optional.of("") : Optional.empty();
    }

    /**
     * Appends one (user, assistant) exchange to a session's history and sets its update time.
     *
     * @return the session as stored now
     * @throws qwen.gateway.chat.GatewayException NOT_FOUND when the session does not exist (any more)
     */
    Session appendTurn(String id, SessionMessage user, SessionMessage assistant);

    /**
     * Reserves the session's next turn for {@code requestId} among all the gateways sharing this
     * store, until the lease is given back (or, for a gateway that died holding it, expires). A
     * store used by one gateway only needs none: the gateway's own reservation covers it.
     *
     * @throws qwen.gateway.chat.GatewayException FAILED_PRECONDITION when another gateway runs a turn
     *     on the session (naming its request id), NOT_FOUND when the session does not exist
     */
    default TurnLease leaseTurn(String id, String requestId) {
        return TurnLease.LOCAL;
    }
}
