package qwen.gateway.session;

import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Pattern;
import org.jboss.logging.Logger;
import qwen.gateway.chat.GatewayException;

/**
 * The networked session store: one row per session in a PostgreSQL table, so that several gateway
 * replicas serve the same sessions (any of them may run a session's next turn). The session is
 * kept as the same JSON document the embedded store writes, beside the columns that listing sorts
 * on.
 *
 * <p>Appending a turn reads the row {@code FOR UPDATE} and writes it back in one transaction, so
 * turns committed by different gateways never lose one another. Connections are kept in a small
 * pool and dropped after any error (a restarted server costs one failed call per pooled
 * connection at most). A server that cannot be reached makes calls fail with UNAVAILABLE.
 *
 * <p>A turn holds a lease on its session's row ({@link #leaseTurn}): a random token, the request id
 * and an expiry on the server's clock (so gateways' clocks need not agree). The gateway renews it
 * every third of {@code turnLease} while the turn runs and clears it when the turn ends; a lease
 * whose gateway died expires after {@code turnLease}, and the session is free again.
 */
public final class PostgresSessionStore implements SessionStore, AutoCloseable {

    private static final Logger LOG = Logger.getLogger(PostgresSessionStore.class);
    private static final Pattern TABLE = Pattern.compile("[a-z_][a-z0-9_]{0,62}");
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final int POOL = 8;
    /** The default lease: long enough to ride out a slow renewal, short enough that a crashed gateway frees its sessions soon. */
    public static final Duration DEFAULT_TURN_LEASE = Duration.ofSeconds(30);

    static {
        // Registers PostgreSQL's driver from this class's loader: DriverManager offers a caller only
        // the drivers its own loader sees, so a driver that another loader registered first (an
        // earlier application in the same JVM, as when tests start several) would not count.
        try {
            Class.forName("org.postgresql.Driver", true, PostgresSessionStore.class.getClassLoader());
        } catch (ClassNotFoundException e) {
            throw new ExceptionInInitializerError("the PostgreSQL JDBC driver (org.postgresql:postgresql) is"
                    + " not on the class path: " + e.getMessage());
        }
    }

    private final String url;
    private final String table;
    private final Clock clock;
    private final BlockingQueue<Connection> idle = new ArrayBlockingQueue<>(POOL);
    private final Duration turnLease;
    private final ScheduledExecutorService leases = Executors.newSingleThreadScheduledExecutor(
            Thread.ofPlatform().name("qwen-turn-lease").daemon().factory());

    /** With the {@link #DEFAULT_TURN_LEASE default turn lease}. */
    public PostgresSessionStore(String url, String table, Clock clock) {
        this(url, table, clock, DEFAULT_TURN_LEASE);
    }

    /**
     * Connects, creating the table if it does not exist.
     *
     * @param url a JDBC URL, {@code jdbc:postgresql://host:5432/db?user=...&password=...}
     * @param table the table's name (lower case letters, digits, underscores)
     * @param turnLease how long a turn's lease lasts without renewal (a gateway that dies mid-turn
     *     blocks the session's turns for at most this long)
     * @throws IllegalStateException when the server cannot be reached or the table not made,
     *     naming the key to fix; the URL's password is never part of a message
     */
    public PostgresSessionStore(String url, String table, Clock clock, Duration turnLease) {
        if (!url.startsWith("jdbc:postgresql:")) {
            throw new IllegalStateException("qwen.gateway.sessions.jdbc-url must start with jdbc:postgresql:, got "
                    + redact(url));
        }
        if (!TABLE.matcher(table).matches()) {
            throw new IllegalStateException("qwen.gateway.sessions.table must be a plain lower-case SQL name, got '"
                    + table + "'");
        }
        if (turnLease.toMillis() < 300) {
            throw new IllegalStateException("qwen.gateway.sessions.turn-lease must be at least 300ms, got " + turnLease);
        }
        this.url = url;
        this.table = table;
        this.clock = clock;
        this.turnLease = turnLease;
        try (Connection c = DriverManager.getConnection(url); Statement s = c.createStatement()) {
            s.execute("CREATE TABLE IF NOT EXISTS " + table + " ("
                    + "id TEXT COLLATE \"C\" PRIMARY KEY, "
                    + "update_nanos BIGINT NOT NULL, "
                    + "body BYTEA NOT NULL)");
            s.execute("CREATE INDEX IF NOT EXISTS " + table + "_by_update ON " + table + " (update_nanos DESC, id)");
            // The turn lease (tables made before it get the columns here).
            s.execute("ALTER TABLE " + table + " ADD COLUMN IF NOT EXISTS turn_token TEXT, "
                    + "ADD COLUMN IF NOT EXISTS turn_request TEXT, ADD COLUMN IF NOT EXISTS turn_expires TIMESTAMPTZ");
        } catch (SQLException e) {
            throw new IllegalStateException("session store " + redact(url) + ": " + e.getMessage()
                    + " (check qwen.gateway.sessions.jdbc-url)", e);
        }
        LOG.infof("session store: PostgreSQL %s, table %s", redact(url), table);
    }

    @Override
    public Session create(String title, Map<String, String> metadata, String systemPrompt) {
        Instant now = clock.instant();
        while (true) {
            String id = newId();
            Session session = new Session(id, title, metadata, systemPrompt, now, now, List.of(),
                    Session.sequenceIdFor(id));
            int inserted = run(c -> {
                try (PreparedStatement s = c.prepareStatement("INSERT INTO " + table
                        + " (id, update_nanos, body) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING")) {
                    s.setString(1, id);
                    s.setLong(2, nanos(now));
                    s.setBytes(3, SessionJson.write(session));
                    return s.executeUpdate();
                }
            });
            if (inserted == 1) { // 128 random bits do not collide in practice; the loop makes it certain
                return session;
            }
        }
    }

    @Override
    public Optional<Session> get(String id) {
        return run(c -> {
            try (PreparedStatement s = c.prepareStatement("SELECT body FROM " + table + " WHERE id = ?")) {
                s.setString(1, id);
                try (ResultSet r = s.executeQuery()) {
                    return r.next() ? Optional.of(read(r.getBytes(1), id)) : Optional.<Session>empty();
                }
            }
        });
    }

    @Override
    public SessionPage list(int pageSize, String pageToken) {
        if (pageSize < 1) {
            throw new IllegalArgumentException("pageSize must be >= 1, got " + pageSize);
        }
        PageToken after = pageToken.isEmpty() ? null : PageToken.decode(pageToken);
        List<Session> ordered = run(c -> {
            String where = after == null ? "" : " WHERE update_nanos < ? OR (update_nanos = ? AND id > ?)";
            try (PreparedStatement s = c.prepareStatement("SELECT id, body FROM " + table + where
                    + " ORDER BY update_nanos DESC, id ASC LIMIT ?")) {
                int i = 1;
                if (after != null) {
                    s.setLong(i++, nanos(after.updateTime()));
                    s.setLong(i++, nanos(after.updateTime()));
                    s.setString(i++, after.id());
                }
                s.setInt(i, pageSize + 1);
                List<Session> rows = new ArrayList<>();
                try (ResultSet r = s.executeQuery()) {
                    while (r.next()) {
                        rows.add(read(r.getBytes(2), r.getString(1)));
                    }
                }
                return rows;
            }
        });
        if (ordered.size() <= pageSize) {
            return new SessionPage(ordered, "");
        }
        List<Session> page = ordered.subList(0, pageSize);
        return new SessionPage(page, PageToken.after(page.getLast()).encode());
    }

    @Override
    public boolean delete(String id) {
        return run(c -> {
            try (PreparedStatement s = c.prepareStatement("DELETE FROM " + table + " WHERE id = ?")) {
                s.setString(1, id);
                return s.executeUpdate() == 1;
            }
        });
    }

    @Override
    public Optional<String> deleteNamingTurn(String id) {
        return run(c -> {
            // One statement: the lease read is the one the delete removed, so a turn that gives its
            // lease back after this finds the row gone (RowLease.release), and one that gave it back
            // before is not named.
            try (PreparedStatement s = c.prepareStatement("DELETE FROM " + table + " WHERE id = ? RETURNING"
                    + " CASE WHEN turn_token IS NOT NULL AND turn_expires >= clock_timestamp()"
                    + " THEN COALESCE(turn_request, '') ELSE '' END")) {
                s.setString(1, id);
                try (ResultSet r = s.executeQuery()) {
                    return r.next() ? Optional.of(r.getString(1)) : Optional.<String>empty();
                }
            }
        });
    }

    @Override
    public Session appendTurn(String id, SessionMessage user, SessionMessage assistant) {
        return run(c -> {
            c.setAutoCommit(false);
            try {
                Session old;
                try (PreparedStatement s = c.prepareStatement("SELECT body FROM " + table + " WHERE id = ? FOR UPDATE")) {
                    s.setString(1, id);
                    try (ResultSet r = s.executeQuery()) {
                        if (!r.next()) {
                            c.rollback();
                            throw GatewayException.notFound("session " + id + " does not exist (it may have been deleted)");
                        }
                        old = read(r.getBytes(1), id);
                    }
                }
                Instant now = clock.instant();
                Session updated = old.withTurn(user, assistant, now);
                try (PreparedStatement s = c.prepareStatement("UPDATE " + table
                        + " SET update_nanos = ?, body = ? WHERE id = ?")) {
                    s.setLong(1, nanos(now));
                    s.setBytes(2, SessionJson.write(updated));
                    s.setString(3, id);
                    s.executeUpdate();
                }
                c.commit();
                return updated;
            } finally {
                c.setAutoCommit(true);
            }
        });
    }

    @Override
    public TurnLease leaseTurn(String id, String requestId) {
        String token = newId();
        for (int attempt = 0; ; attempt++) {
            Optional<String> holder = run(c -> {
                try (PreparedStatement s = c.prepareStatement("UPDATE " + table + " SET turn_token = ?, turn_request = ?, "
                        + "turn_expires = clock_timestamp() + ? * interval '1 millisecond' "
                        + "WHERE id = ? AND (turn_token IS NULL OR turn_expires < clock_timestamp())")) {
                    s.setString(1, token);
                    s.setString(2, requestId);
                    s.setLong(3, turnLease.toMillis());
                    s.setString(4, id);
                    if (s.executeUpdate() == 1) {
                        return Optional.<String>empty();
                    }
                }
                try (PreparedStatement s = c.prepareStatement("SELECT turn_request FROM " + table
                        + " WHERE id = ? AND turn_token IS NOT NULL AND turn_expires >= clock_timestamp()")) {
                    s.setString(1, id);
                    try (ResultSet r = s.executeQuery()) {
                        return Optional.of(r.next() ? r.getString(1) : "");
                    }
                }
            });
            if (holder.isEmpty()) {
                return new RowLease(id, token);
            }
            if (!holder.get().isEmpty()) {
                throw TurnLease.busy(id, holder.get());
            }
            // No live lease now: either the session is gone, or the lease ended between the two
            // statements (then the claim is tried again).
            if (get(id).isEmpty()) {
                throw GatewayException.notFound("session_id: no session " + id);
            }
            if (attempt == 2) {
                throw new GatewayException(GatewayException.Kind.FAILED_PRECONDITION, "session " + id
                        + " is running turns on other gateways; wait for them to finish");
            }
        }
    }

    /** A lease on one session's row, renewed on the lease thread until given back. */
    private final class RowLease implements TurnLease {
        private final String id;
        private final String token;
        private final AtomicBoolean released = new AtomicBoolean();
        private final ScheduledFuture<?> renewal;

        RowLease(String id, String token) {
            this.id = id;
            this.token = token;
            long every = Math.max(100, turnLease.toMillis() / 3);
            this.renewal = leases.scheduleWithFixedDelay(this::renew, every, every, TimeUnit.MILLISECONDS);
        }

        private void renew() {
            try {
                int kept = run(c -> {
                    try (PreparedStatement s = c.prepareStatement("UPDATE " + table + " SET turn_expires = "
                            + "clock_timestamp() + ? * interval '1 millisecond' WHERE id = ? AND turn_token = ?")) {
                        s.setLong(1, turnLease.toMillis());
                        s.setString(2, id);
                        s.setString(3, token);
                        return s.executeUpdate();
                    }
                });
                if (kept == 0 && !released.get()) {
                    // Deleted, or expired and taken by another gateway: nothing to renew any more.
                    LOG.warnf("session %s: the running turn's lease is gone (session deleted or lease expired)", id);
                    renewal.cancel(false);
                }
            } catch (RuntimeException e) {
                LOG.warnf("session %s: renewing the turn's lease failed (%s); it expires in %s unless a renewal succeeds",
                        id, e.getMessage(), turnLease);
            }
        }

        @Override
        public boolean release() {
            if (!released.compareAndSet(false, true)) {
                return false;
            }
            renewal.cancel(false);
            try {
                return run(c -> {
                    try (PreparedStatement s = c.prepareStatement("UPDATE " + table + " SET turn_token = NULL, "
                            + "turn_request = NULL, turn_expires = NULL WHERE id = ? AND turn_token = ?")) {
                        s.setString(1, id);
                        s.setString(2, token);
                        if (s.executeUpdate() == 1) {
                            return false;
                        }
                    }
                    // Not ours any more: the session was deleted (its deleter left the KV to us), or
                    // the lease expired and another gateway's turn holds it now (its KV is in use).
                    try (PreparedStatement s = c.prepareStatement("SELECT 1 FROM " + table + " WHERE id = ?")) {
                        s.setString(1, id);
                        try (ResultSet r = s.executeQuery()) {
                            return !r.next();
                        }
                    }
                });
            } catch (RuntimeException e) {
                LOG.warnf("session %s: giving the turn's lease back failed (%s); it expires within %s",
                        id, e.getMessage(), turnLease);
                return false;
            }
        }

        @Override
        public void releaseLater(Runnable ifDeleted) {
            if (released.get()) {
                return;
            }
            Runnable release = () -> {
                if (release()) {
                    ifDeleted.run();
                }
            };
            try {
                leases.execute(release);
            } catch (java.util.concurrent.RejectedExecutionException e) {
                release.run(); // the store is closing
            }
        }
    }

    @Override
    public void close() {
        leases.shutdownNow();
        Connection c;
        while ((c = idle.poll()) != null) {
            closeQuietly(c);
        }
    }

    interface Work<T> {
        T run(Connection connection) throws SQLException;
    }

    /**
     * The table of the requests running on the gateways that share this store, for relaying a
     * Cancel to the gateway that runs the request; made when missing.
     */
    PostgresRequests requests() {
        return new PostgresRequests(this, table);
    }

    /** How long a turn's lease lasts without renewal; running requests' rows last as long. */
    Duration turnLease() {
        return turnLease;
    }

    /**
     * Generations that register their requests in this store, so that a Cancel received by any
     * gateway sharing it stops the request on the gateway that runs it.
     *
     * @param pollInterval how often this gateway looks for cancels of its requests
     */
    public SharedCancellation shareCancellation(qwen.gateway.chat.Generations engine, Duration pollInterval) {
        return new SharedCancellation(engine, requests(), pollInterval, turnLease);
    }

    /** Runs {@code work} on a pooled connection; a connection that saw an SQL error is dropped. */
    <T> T run(Work<T> work) {
        Connection c = idle.poll();
        try {
            if (c == null) {
                c = DriverManager.getConnection(url);
            }
            T result = work.run(c);
            if (!idle.offer(c)) {
                closeQuietly(c);
            }
            return result;
        } catch (SQLException e) {
            if (c != null) {
                closeQuietly(c);
            }
            throw new GatewayException(GatewayException.Kind.UNAVAILABLE,
                    "the session store (PostgreSQL) failed: " + e.getMessage());
        } catch (RuntimeException e) {
            if (c != null) {
                closeQuietly(c); // it may be mid-transaction
            }
            throw e;
        }
    }

    private static Session read(byte[] body, String id) {
        try {
            return SessionJson.read(body, "session " + id);
        } catch (java.io.IOException e) {
            throw new GatewayException(GatewayException.Kind.INTERNAL, "session " + id + " is stored malformed: "
                    + e.getMessage());
        }
    }

    private static long nanos(Instant time) {
        return Math.addExact(Math.multiplyExact(time.getEpochSecond(), 1_000_000_000L), time.getNano());
    }

    private static void closeQuietly(Connection c) {
        try {
            c.close();
        } catch (SQLException e) {
            LOG.debugf("closing a session-store connection: %s", e.getMessage());
        }
    }

    /** The URL without its query (user, password). */
    static String redact(String url) {
        int query = url.indexOf('?');
        return query < 0 ? url : url.substring(0, query) + "?…";
    }

    private static String newId() {
        byte[] bits = new byte[16];
        RANDOM.nextBytes(bits);
        return Base64.getUrlEncoder().withoutPadding().encodeToString(bits);
    }
}
