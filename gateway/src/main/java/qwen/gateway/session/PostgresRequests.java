package qwen.gateway.session;

import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The requests running on the gateways that share a PostgreSQL session store, one row each: the
 * request id, the gateway that runs it (its owner), an expiry on the server's clock that the owner
 * renews, and the cancel another gateway asked for with the owner's answer. Cancel relays through
 * it: the gateway receiving the Cancel marks the row, the owner polls for marked rows of its own,
 * stops the request and writes the outcome, and the cancelling gateway reads the outcome and deletes
 * the row. A request that ends unmarked deletes its own row; rows whose owner died expire and are
 * swept by any gateway.
 *
 * <p>A session turn's row also names its session: once the session's row is gone (DeleteSession on
 * any gateway) the owner's poll finds the request as if it were marked, so a deleted session's turn
 * is stopped whichever gateway took the delete, even one that deleted it before the turn registered.
 */
final class PostgresRequests {

    /** What the owner answered to a cancel, as the cancelling gateway reads it. */
    enum Answer {
        /** The owner has not answered yet. */
        PENDING,
        /** The owner stopped the request. */
        CANCELLED,
        /** The request ended on its own before the owner could stop it. */
        FINISHED,
        /** No such row, or its owner stopped renewing it (the gateway died): nothing runs. */
        GONE
    }

    private final PostgresSessionStore store;
    private final String table;
    private final String sessions;

    /**
     * @param sessions the session table; the requests' table is {@code <sessions>_requests}
     */
    PostgresRequests(PostgresSessionStore store, String sessions) {
        this.store = store;
        this.table = sessions + "_requests";
        this.sessions = sessions;
        store.run(c -> {
            try (Statement s = c.createStatement()) {
                s.execute("CREATE TABLE IF NOT EXISTS " + table + " ("
                        + "request_id TEXT COLLATE \"C\" PRIMARY KEY, "
                        + "owner TEXT NOT NULL, "
                        + "expires TIMESTAMPTZ NOT NULL, "
                        + "cancel_requested BOOLEAN NOT NULL DEFAULT FALSE, "
                        + "outcome TEXT)");
                s.execute("CREATE INDEX IF NOT EXISTS " + table + "_by_owner ON " + table + " (owner)");
                // The session of a turn (tables made before it get the column here; NULL: stateless).
                s.execute("ALTER TABLE " + table + " ADD COLUMN IF NOT EXISTS session_id TEXT");
            }
            return null;
        });
    }

    /**
     * Registers a request for {@code owner}; false when a live row has the id (the request runs on
     * some gateway). A row that expired or was answered is taken over.
     */
    boolean claim(String requestId, String owner, Duration ttl) {
        return claim(requestId, null, owner, ttl);
    }

    /**
     * Registers a request for {@code owner} as {@link #claim(String, String, Duration)} does, naming
     * the session it is a turn of ({@code sessionId}; null for a stateless request).
     */
    boolean claim(String requestId, String sessionId, String owner, Duration ttl) {
        return store.run(c -> {
            try (PreparedStatement s = c.prepareStatement("INSERT INTO " + table + " AS r"
                    + " (request_id, owner, expires, session_id)"
                    + " VALUES (?, ?, clock_timestamp() + ? * interval '1 millisecond', ?)"
                    + " ON CONFLICT (request_id) DO UPDATE SET owner = EXCLUDED.owner, expires = EXCLUDED.expires,"
                    + " cancel_requested = FALSE, outcome = NULL, session_id = EXCLUDED.session_id"
                    + " WHERE r.expires < clock_timestamp() OR r.outcome IS NOT NULL")) {
                s.setString(1, requestId);
                s.setString(2, owner);
                s.setLong(3, ttl.toMillis());
                s.setString(4, sessionId);
                return s.executeUpdate() == 1;
            }
        });
    }

    /**
     * The owner's request ended. Unmarked, its row goes; marked by a cancel not yet answered, the
     * answer becomes FINISHED for the cancelling gateway to read (row locks order this against
     * {@link #requestCancel}: one of the two sees the other's write).
     */
    void finished(String requestId, String owner) {
        store.run(c -> {
            try (PreparedStatement s = c.prepareStatement("DELETE FROM " + table
                    + " WHERE request_id = ? AND owner = ? AND NOT cancel_requested")) {
                s.setString(1, requestId);
                s.setString(2, owner);
                if (s.executeUpdate() == 1) {
                    return null;
                }
            }
            try (PreparedStatement s = c.prepareStatement("UPDATE " + table
                    + " SET outcome = COALESCE(outcome, 'finished') WHERE request_id = ? AND owner = ?")) {
                s.setString(1, requestId);
                s.setString(2, owner);
                s.executeUpdate();
            }
            return null;
        });
    }

    /**
     * The owner's requests to stop that have no answer yet: those another gateway asked to cancel,
     * and turns whose session no longer exists (deleted through any gateway).
     */
    List<String> cancelsFor(String owner) {
        return store.run(c -> {
            try (PreparedStatement s = c.prepareStatement("SELECT request_id FROM " + table + " r"
                    + " WHERE owner = ? AND outcome IS NULL AND (cancel_requested OR (session_id IS NOT NULL"
                    + " AND NOT EXISTS (SELECT 1 FROM " + sessions + " s WHERE s.id = r.session_id)))")) {
                s.setString(1, owner);
                List<String> ids = new ArrayList<>();
                try (ResultSet r = s.executeQuery()) {
                    while (r.next()) {
                        ids.add(r.getString(1));
                    }
                }
                return ids;
            }
        });
    }

    /** Those of {@code sessionIds} whose session row is gone (deleted through any gateway). */
    Set<String> sessionsGone(Collection<String> sessionIds) {
        if (sessionIds.isEmpty()) {
            return Set.of();
        }
        return store.run(c -> {
            try (PreparedStatement s = c.prepareStatement("SELECT x FROM unnest(?) AS x"
                    + " WHERE NOT EXISTS (SELECT 1 FROM " + sessions + " s WHERE s.id = x)")) {
                s.setArray(1, c.createArrayOf("text", sessionIds.toArray()));
                Set<String> gone = new HashSet<>();
                try (ResultSet r = s.executeQuery()) {
                    while (r.next()) {
                        gone.add(r.getString(1));
                    }
                }
                return gone;
            }
        });
    }

    /** The owner stopped the request. */
    void cancelled(String requestId, String owner) {
        store.run(c -> {
            try (PreparedStatement s = c.prepareStatement("UPDATE " + table
                    + " SET outcome = 'cancelled' WHERE request_id = ? AND owner = ? AND outcome IS NULL")) {
                s.setString(1, requestId);
                s.setString(2, owner);
                return s.executeUpdate();
            }
        });
    }

    /** Pushes the expiry of the owner's unanswered rows {@code ttl} ahead. */
    void renew(String owner, Duration ttl) {
        store.run(c -> {
            try (PreparedStatement s = c.prepareStatement("UPDATE " + table
                    + " SET expires = clock_timestamp() + ? * interval '1 millisecond'"
                    + " WHERE owner = ? AND outcome IS NULL")) {
                s.setLong(1, ttl.toMillis());
                s.setString(2, owner);
                return s.executeUpdate();
            }
        });
    }

    /** Deletes every expired row (dead owners', and answers no cancelling gateway read); returns how many. */
    int sweep() {
        return store.run(c -> {
            try (Statement s = c.createStatement()) {
                return s.executeUpdate("DELETE FROM " + table + " WHERE expires < clock_timestamp()");
            }
        });
    }

    /** Marks a live request for cancelling; false when no live row has the id. */
    boolean requestCancel(String requestId) {
        return store.run(c -> {
            try (PreparedStatement s = c.prepareStatement("UPDATE " + table
                    + " SET cancel_requested = TRUE WHERE request_id = ? AND expires >= clock_timestamp()")) {
                s.setString(1, requestId);
                return s.executeUpdate() == 1;
            }
        });
    }

    /** The owner's answer to a cancel; a final one (not PENDING) deletes the row. */
    Answer answer(String requestId) {
        return store.run(c -> {
            String outcome;
            boolean expired;
            try (PreparedStatement s = c.prepareStatement("SELECT outcome, expires < clock_timestamp() FROM " + table
                    + " WHERE request_id = ?")) {
                s.setString(1, requestId);
                try (ResultSet r = s.executeQuery()) {
                    if (!r.next()) {
                        return Answer.GONE;
                    }
                    outcome = r.getString(1);
                    expired = r.getBoolean(2);
                }
            }
            if (outcome == null && !expired) {
                return Answer.PENDING;
            }
            try (PreparedStatement s = c.prepareStatement("DELETE FROM " + table + " WHERE request_id = ?")) {
                s.setString(1, requestId);
                s.executeUpdate();
            }
            return outcome == null ? Answer.GONE : "cancelled".equals(outcome) ? Answer.CANCELLED : Answer.FINISHED;
        });
    }

    /** Whether a row (live, expired or answered) has the id. */
    boolean holds(String requestId) {
        return store.run(c -> {
            try (PreparedStatement s = c.prepareStatement("SELECT 1 FROM " + table + " WHERE request_id = ?")) {
                s.setString(1, requestId);
                try (ResultSet r = s.executeQuery()) {
                    return r.next();
                }
            }
        });
    }
}
