package qwen.gateway.session;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import qwen.gateway.chat.GatewayException;
import qwen.gateway.chat.GenerationEvent;
import qwen.gateway.chat.GenerationEvent.FinishReason;
import qwen.gateway.chat.GenerationEvent.Finished;
import qwen.gateway.testing.Await;
import qwen.gateway.testing.FakeShard;

/**
 * DeleteSession from any gateway: two gateways (each its own engine over its own in-memory shard,
 * whose steps take 20 ms) share one PostgreSQL store. A session whose turn streams on A is deleted
 * through B: A's stream ends with FINISH_REASON_CANCELLED within the bound (one 50 ms poll, a round
 * trip and a step), A's shard holds none of its KV, both gateways report it gone and it stays gone.
 * The race of the turn's commit with the delete is played both ways by holding the session's row
 * lock while the two queue behind it: the delete first ends the turn CANCELLED with nothing
 * committed; the commit first ends it with its own reason and the delete removes the exchange
 * with the session. Either way the owner frees the KV. An idle session deleted through the gateway
 * that did not run it has its KV freed by the owner's sweep within the sweep's bound (one sweep
 * interval and a poll), while the idle sessions that still exist keep theirs. Unknown sessions
 * behave as before.
 */
@Timeout(120)
class DeleteOnAnyGatewayTest {

    /** The stream's end must come within this of the delete (poll 50 ms, steps 20 ms). */
    private static final Duration BOUND = Duration.ofMillis(1500);

    private static String url;
    private static String table;
    private static FakeShard shardA;
    private static FakeShard shardB;
    private static StoreGateway a;
    private static StoreGateway b;

    @BeforeAll
    static void start() {
        url = TestPostgres.url();
        table = TestPostgres.freshTable();
        shardA = new FakeShard("gateway-a:9100", FakeShard.info(0, 2, 2, true, true));
        shardA.stepDelay(20);
        shardB = new FakeShard("gateway-b:9100", FakeShard.info(0, 2, 2, true, true));
        a = StoreGateway.over(shardA, url, table);
        b = StoreGateway.over(shardB, url, table);
    }

    @AfterAll
    static void stop() throws Exception {
        StoreGateway.closeAll(url, table, a, b);
    }

    /** A session turn on {@code gateway} of up to {@code maxNewTokens} (20 ms each on A), collecting its events. */
    private static EventStream turn(StoreGateway gateway, String sessionId, String requestId, int maxNewTokens) {
        return EventStream.of(gateway.turn(sessionId, "Tell me a long story", requestId, maxNewTokens));
    }

    @Test
    void aTurnOnOneGatewayIsCancelledByDeletingItsSessionThroughTheOther() throws Exception {
        int heldBefore = shardA.sequencesHeld();
        Session session = a.sessions().create(null, "streaming on A", Map.of()).session();
        String kvOnA = a.engine().shardSequenceId(session.sequenceId());
        EventStream running = turn(a, session.id(), "turn-on-a", 2000);
        waitFor(running::hasDelta, "a token on A");
        assertEquals(heldBefore + 1, shardA.sequencesHeld(), "A's shard holds the turn's KV");
        assertEquals("turn-on-a", a.sessions().get(session.id()).runningRequestId());
        assertEquals("", b.sessions().get(session.id()).runningRequestId(), "B runs no turn of it");

        long asked = System.nanoTime();
        b.sessions().delete(session.id());
        long deleted = System.nanoTime() - asked;
        running.end().get(BOUND.toMillis(), TimeUnit.MILLISECONDS);
        long ended = System.nanoTime() - asked;
        System.out.printf("DeleteSession through gateway B: returned in %d ms, the turn on A ended %d ms after it%n",
                deleted / 1_000_000, ended / 1_000_000);
        assertTrue(deleted < BOUND.toNanos(), "B's delete returned after " + deleted / 1_000_000 + " ms");
        assertTrue(ended < BOUND.toNanos(), "A's stream ended " + ended / 1_000_000 + " ms after the delete");
        Finished finished = running.finished();
        assertEquals(FinishReason.CANCELLED, finished.reason());
        assertTrue(finished.usage().completionTokens() < 2000);

        waitFor(() -> shardA.heldPositions(kvOnA) == 0 && shardA.sequencesHeld() == heldBefore,
                "A to free the deleted session's KV");
        waitFor(() -> !a.store().requests().holds("turn-on-a"), "the turn's request row to go");
        assertGone(session.id());
        // Nothing writes it back later: past several polls and lease renewals' worth of activity.
        Thread.sleep(300);
        assertGone(session.id());
        assertEquals(0, shardA.heldPositions(kvOnA), "no KV came back either");
        GatewayException again = assertThrows(GatewayException.class, () -> a.run(session.id(), "Hi", "after", 2));
        assertEquals(GatewayException.Kind.NOT_FOUND, again.kind(), "a later turn finds no session");
        assertGone(session.id());
    }

    @Test
    void deletingThroughTheGatewayThatRunsTheTurnWorksAsBefore() throws Exception {
        Session session = a.sessions().create(null, "streaming on A, deleted on A", Map.of()).session();
        String kvOnA = a.engine().shardSequenceId(session.sequenceId());
        EventStream running = turn(a, session.id(), "turn-deleted-on-a", 2000);
        waitFor(running::hasDelta, "a token on A");
        a.sessions().delete(session.id());
        running.end().get(1, TimeUnit.SECONDS); // the delete returned once the turn had stopped
        assertEquals(FinishReason.CANCELLED, running.finished().reason());
        waitFor(() -> shardA.heldPositions(kvOnA) == 0, "A to free the deleted session's KV");
        waitFor(() -> !a.store().requests().holds("turn-deleted-on-a"), "the turn's request row to go");
        assertGone(session.id());
    }

    @Test
    void deletingAnIdleSessionThroughEitherGatewayWorksAsBefore() throws Exception {
        Session session = b.sessions().create(null, "idle", Map.of()).session();
        Finished done = assertInstanceOf(Finished.class, b.run(session.id(), "Hi", "idle-turn", 2).getLast());
        assertEquals(FinishReason.LENGTH, done.reason());
        String kvOnB = b.engine().shardSequenceId(session.sequenceId());
        assertTrue(shardB.heldPositions(kvOnB) > 0, "B's shard keeps the idle session's KV");
        assertEquals(1, a.sessions().get(session.id()).session().turns().size(), "A reads the committed turn");

        b.sessions().delete(session.id());
        waitFor(() -> shardB.heldPositions(kvOnB) == 0, "B to free the deleted session's KV");
        assertGone(session.id());
    }

    @Test
    void anIdleSessionDeletedThroughTheOtherGatewayHasItsKvFreedByTheGatewayThatRanIt() throws Exception {
        Session kept = a.sessions().create(null, "idle on A, kept", Map.of()).session();
        Session deleted = a.sessions().create(null, "idle on A, deleted through B", Map.of()).session();
        for (Session session : List.of(kept, deleted)) {
            Finished done = assertInstanceOf(Finished.class, a.run(session.id(), "Hi", "idle-" + session.id(), 2).getLast());
            assertEquals(FinishReason.LENGTH, done.reason());
        }
        String keptKv = a.engine().shardSequenceId(kept.sequenceId());
        String deletedKv = a.engine().shardSequenceId(deleted.sequenceId());
        assertTrue(shardA.heldPositions(deletedKv) > 0, "A's shard keeps the idle session's KV");
        int keptPositions = shardA.heldPositions(keptKv);
        assertTrue(keptPositions > 0);

        long asked = System.nanoTime();
        b.sessions().delete(deleted.id());
        waitFor(() -> shardA.heldPositions(deletedKv) == 0, "A to free the KV of the session deleted through B");
        long freed = System.nanoTime() - asked;
        Duration bound = SharedCancellation.kvSweepInterval(Duration.ofMillis(50)).plusSeconds(1);
        System.out.printf("idle session deleted through gateway B: A freed its KV %d ms later%n", freed / 1_000_000);
        assertTrue(freed < bound.toNanos(), "A freed the KV " + freed / 1_000_000 + " ms after the delete");
        assertGone(deleted.id());

        // A sweep has run by now; the session that still exists keeps its KV and takes its next turn.
        assertEquals(keptPositions, shardA.heldPositions(keptKv), "the kept session's KV is untouched");
        Finished next = assertInstanceOf(Finished.class, b.run(kept.id(), "Again", "kept-next", 2).getLast());
        assertEquals(FinishReason.LENGTH, next.reason());
        assertEquals(2, a.sessions().get(kept.id()).session().turns().size());
        a.sessions().delete(kept.id());
    }

    @Test
    void deletingAnUnknownSessionIsNotFoundAsBefore() {
        for (StoreGateway gateway : List.of(a, b)) {
            GatewayException unknown = assertThrows(GatewayException.class, () -> gateway.sessions().delete("no-such-session"));
            assertEquals(GatewayException.Kind.NOT_FOUND, unknown.kind());
            assertEquals("session_id: no session no-such-session", unknown.getMessage());
        }
        Session session = a.sessions().create(null, "twice", Map.of()).session();
        a.sessions().delete(session.id());
        GatewayException twice = assertThrows(GatewayException.class, () -> b.sessions().delete(session.id()));
        assertEquals(GatewayException.Kind.NOT_FOUND, twice.kind());
        assertEquals("session_id: no session " + session.id(), twice.getMessage());
    }

    @Test
    void aDeleteThatReachesTheStoreBeforeTheTurnsCommitEndsItCancelledWithNothingKept() throws Exception {
        Session session = a.sessions().create(null, "delete first", Map.of()).session();
        String kvOnA = a.engine().shardSequenceId(session.sequenceId());
        EventStream running = turn(a, session.id(), "race-delete-first", 30);
        waitFor(running::hasDelta, "a token on A");
        CompletableFuture<Void> delete;
        try (Connection lock = lockRow(session.id())) {
            delete = CompletableFuture.runAsync(() -> b.sessions().delete(session.id()));
            waitFor(() -> waiting("DELETE FROM " + table + " %") == 1, "B's delete to queue on the row");
            waitFor(() -> waiting("SELECT body FROM " + table + " %FOR UPDATE") == 1,
                    "A's finished turn to queue its commit behind it");
            assertFalse(running.end().isDone(), "Finished waits for the commit");
            lock.commit();
        }
        delete.get(10, TimeUnit.SECONDS);
        running.end().get(10, TimeUnit.SECONDS);
        Finished finished = running.finished();
        assertEquals(FinishReason.CANCELLED, finished.reason(), "the session was gone when the turn came to commit");
        assertEquals(30, finished.usage().completionTokens(), "the generation itself had completed");
        waitFor(() -> shardA.heldPositions(kvOnA) == 0, "A to free the deleted session's KV");
        assertGone(session.id());
    }

    @Test
    void aTurnThatCommitsBeforeTheDeleteReachesTheStoreKeepsItsReasonAndGoesWithTheSession() throws Exception {
        Session session = a.sessions().create(null, "commit first", Map.of()).session();
        String kvOnA = a.engine().shardSequenceId(session.sequenceId());
        EventStream running = turn(a, session.id(), "race-commit-first", 30);
        waitFor(running::hasDelta, "a token on A");
        CompletableFuture<Void> delete;
        try (Connection lock = lockRow(session.id())) {
            waitFor(() -> waiting("SELECT body FROM " + table + " %FOR UPDATE") == 1,
                    "A's finished turn to queue its commit on the row");
            delete = CompletableFuture.runAsync(() -> b.sessions().delete(session.id()));
            waitFor(() -> waiting("DELETE FROM " + table + " %") == 1, "B's delete to queue behind it");
            lock.commit();
        }
        delete.get(10, TimeUnit.SECONDS);
        running.end().get(10, TimeUnit.SECONDS);
        assertEquals(FinishReason.LENGTH, running.finished().reason(), "the turn committed before the delete");
        waitFor(() -> shardA.heldPositions(kvOnA) == 0, "A to free the deleted session's KV");
        assertGone(session.id());
    }

    @Test
    void theOwnersPollFindsTurnsWhoseSessionIsGone() {
        // Covers a delete that lands before the turn registered its request (nothing to mark yet).
        PostgresRequests requests = a.store().requests();
        Session session = a.sessions().create(null, "registered", Map.of()).session();
        assertTrue(requests.claim("orphan-turn", "no-such-session", "poll-owner", Duration.ofSeconds(30)));
        assertTrue(requests.claim("live-turn", session.id(), "poll-owner", Duration.ofSeconds(30)));
        assertTrue(requests.claim("stateless", null, "poll-owner", Duration.ofSeconds(30)));
        assertEquals(List.of("orphan-turn"), requests.cancelsFor("poll-owner"));
        for (String id : List.of("orphan-turn", "live-turn", "stateless")) {
            requests.finished(id, "poll-owner");
        }
        a.sessions().delete(session.id());
    }

    /** GetSession and ListSessions on both gateways know nothing of it, and a second delete is NOT_FOUND. */
    private static void assertGone(String sessionId) {
        for (StoreGateway gateway : List.of(a, b)) {
            GatewayException missing = assertThrows(GatewayException.class, () -> gateway.sessions().get(sessionId));
            assertEquals(GatewayException.Kind.NOT_FOUND, missing.kind());
            SessionPage page = gateway.sessions().list(1000, "");
            assertTrue(page.sessions().stream().noneMatch(s -> s.id().equals(sessionId)), "listed after its delete");
        }
    }

    /** A transaction holding the session row's lock, as a slow writer would; commit or close ends it. */
    private static Connection lockRow(String sessionId) throws SQLException {
        Connection c = DriverManager.getConnection(url);
        c.setAutoCommit(false);
        try (PreparedStatement s = c.prepareStatement("SELECT 1 FROM " + table + " WHERE id = ? FOR UPDATE")) {
            s.setString(1, sessionId);
            try (ResultSet r = s.executeQuery()) {
                assertTrue(r.next(), "the session's row");
            }
        }
        return c;
    }

    /** Statements of this table's users that wait for a lock, by their text. */
    private static int waiting(String queryPattern) {
        try (Connection c = DriverManager.getConnection(url);
             PreparedStatement s = c.prepareStatement("SELECT count(*) FROM pg_stat_activity"
                     + " WHERE wait_event_type = 'Lock' AND query LIKE ?")) {
            s.setString(1, queryPattern);
            try (ResultSet r = s.executeQuery()) {
                r.next();
                return r.getInt(1);
            }
        } catch (SQLException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void waitFor(BooleanSupplier condition, String what) {
        Await.until(condition, Duration.ofSeconds(20), what);
    }
}
