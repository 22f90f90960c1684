package qwen.gateway.session;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import qwen.gateway.chat.ChatMessage.Role;
import qwen.gateway.chat.GatewayException;

/** The PostgreSQL session store against a real server: the SessionStore contract, shared by two stores. */
@Timeout(60)
class PostgresSessionStoreTest {

    private String url;
    private String table;
    private PostgresSessionStore store;
    private PostgresSessionStore other; // a second gateway's store on the same table

    @BeforeEach
    void open() {
        url = TestPostgres.url();
        table = TestPostgres.freshTable();
        store = new PostgresSessionStore(url, table, Clock.systemUTC());
        other = new PostgresSessionStore(url, table, Clock.systemUTC());
    }

    @AfterEach
    void drop() throws Exception {
        if (store != null) {
            store.close();
            other.close();
            TestPostgres.drop(url, table);
        }
    }

    @Test
    void aSessionMadeByOneStoreIsSeenChangedAndDeletedThroughTheOther() {
        Session made = store.create("title", Map.of("k", "v"), "You are terse.");
        Session seen = other.get(made.id()).orElseThrow();
        assertEquals(made, seen);

        Session after = other.appendTurn(made.id(), message(Role.USER, "hi"), message(Role.ASSISTANT, "hello"));
        assertEquals(2, after.messages().size());
        assertEquals(after, store.get(made.id()).orElseThrow());
        assertTrue(after.updateTime().compareTo(made.updateTime()) >= 0);

        assertTrue(store.delete(made.id()));
        assertFalse(other.delete(made.id()));
        assertTrue(other.get(made.id()).isEmpty());
        GatewayException gone = assertThrows(GatewayException.class,
                () -> store.appendTurn(made.id(), message(Role.USER, "x"), message(Role.ASSISTANT, "y")));
        assertEquals(GatewayException.Kind.NOT_FOUND, gone.kind());
    }

    @Test
    void concurrentTurnsFromTwoStoresAreAllKept() throws Exception {
        Session made = store.create("", Map.of(), "");
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<?>> done = new ArrayList<>();
            for (int i = 0; i < 20; i++) {
                PostgresSessionStore via = i % 2 == 0 ? store : other;
                int n = i;
                done.add(pool.submit(() -> via.appendTurn(made.id(), message(Role.USER, "u" + n),
                        message(Role.ASSISTANT, "a" + n))));
            }
            for (Future<?> f : done) {
                f.get();
            }
        } finally {
            pool.shutdownNow();
        }
        Session last = other.get(made.id()).orElseThrow();
        assertEquals(40, last.messages().size(), "no turn lost to a concurrent writer");
        Set<String> users = new HashSet<>();
        last.turns().forEach(t -> users.add(t.user()));
        assertEquals(20, users.size());
    }

    @Test
    void listPagesMostRecentFirstWithStableTokens() {
        Instant t0 = Instant.parse("2026-01-01T00:00:00.123456789Z");
        List<String> ids = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            PostgresSessionStore timed = new PostgresSessionStore(url, table, Clock.fixed(t0.plusNanos(i), ZoneOffset.UTC));
            ids.add(timed.create("s" + i, Map.of(), "").id());
            timed.close();
        }
        SessionPage first = store.list(2, "");
        assertEquals(List.of(ids.get(4), ids.get(3)), first.sessions().stream().map(Session::id).toList());
        SessionPage second = other.list(2, first.nextPageToken());
        assertEquals(List.of(ids.get(2), ids.get(1)), second.sessions().stream().map(Session::id).toList());
        SessionPage third = store.list(2, second.nextPageToken());
        assertEquals(List.of(ids.get(0)), third.sessions().stream().map(Session::id).toList());
        assertEquals("", third.nextPageToken());
        assertEquals(t0.plusNanos(4), first.sessions().getFirst().updateTime(), "nanosecond times survive");

        GatewayException bad = assertThrows(GatewayException.class, () -> store.list(2, "not-a-token"));
        assertEquals(GatewayException.Kind.INVALID_ARGUMENT, bad.kind());
    }

    @Test
    void anUnreachableServerFailsStartUpNamingTheKeyButNotThePassword() {
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> new PostgresSessionStore(
                "jdbc:postgresql://127.0.0.1:1/none?user=u&password=s3cret&connectTimeout=2", table, Clock.systemUTC()));
        assertTrue(e.getMessage().contains("qwen.gateway.sessions.jdbc-url"), e.getMessage());
        assertFalse(e.getMessage().contains("s3cret"), e.getMessage());
        assertThrows(IllegalStateException.class, () -> new PostgresSessionStore(url, "bad-name;", Clock.systemUTC()));
    }

    private static SessionMessage message(Role role, String text) {
        return new SessionMessage(role, text, text.length(), Instant.now());
    }
}
