package qwen.gateway.session;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import qwen.gateway.chat.GatewayException;
import qwen.gateway.chat.GenerationEvent;
import qwen.gateway.chat.GenerationEvent.Finished;
import qwen.gateway.testing.FakeShard;

/**
 * One turn per session at a time across gateways: two gateways (each its own engine over its own
 * in-memory shard, each its own store connection) share one PostgreSQL table. While a turn runs on
 * gateway A, a turn on the same session through gateway B fails FAILED_PRECONDITION naming A's
 * request, as a second turn on A itself does, and changes nothing; once A's turn has finished, B's
 * turn runs at once. A gateway that dies holding a turn frees the session when its lease expires,
 * and a live turn's lease is renewed past its duration.
 */
@Timeout(120)
class TurnLeaseTest {

    private static String url;
    private static String table;
    private static FakeShard shardA;
    private static FakeShard shardB;
    private static StoreGateway a;
    private static StoreGateway b;

    private static Finished run(StoreGateway gateway, String sessionId, String message, String requestId) {
        return (Finished) gateway.run(sessionId, message, requestId, 4).getLast();
    }

    @BeforeAll
    static void start() {
        url = TestPostgres.url();
        table = TestPostgres.freshTable();
        shardA = new FakeShard("gateway-a:9100", FakeShard.info(0, 2, 2, true, true));
        shardB = new FakeShard("gateway-b:9100", FakeShard.info(0, 2, 2, true, true));
        a = StoreGateway.over(shardA, url, table);
        b = StoreGateway.over(shardB, url, table);
    }

    @AfterAll
    static void stop() throws Exception {
        StoreGateway.closeAll(url, table, a, b);
    }

    @Test
    void aSecondTurnOnAnotherGatewayIsRefusedWhileTheFirstRuns() throws Exception {
        String id = a.sessions().create(null, "leased", Map.of()).session().id();
        int stepsOnB = shardB.requests().size();
        CountDownLatch gate = new CountDownLatch(1);
        shardA.gate(gate);
        CompletableFuture<List<GenerationEvent>> running = new CompletableFuture<>();
        try {
            // Subscribing starts the turn: it holds A's reservation and the lease from here on.
            a.turn(id, "Hello!", "turn-on-a", 4).collect().asList().subscribe().with(running::complete,
                    running::completeExceptionally);

            GatewayException onB = assertThrows(GatewayException.class, () -> run(b, id, "Me too!", "turn-on-b"));
            assertEquals(GatewayException.Kind.FAILED_PRECONDITION, onB.kind());
            assertTrue(onB.getMessage().contains("request_id turn-on-a"), onB.getMessage());
            GatewayException onA = assertThrows(GatewayException.class, () -> run(a, id, "Again!", "again-on-a"));
            assertEquals(GatewayException.Kind.FAILED_PRECONDITION, onA.kind());
            assertEquals(onA.getMessage(), onB.getMessage(), "the same error on either gateway");
            assertEquals(stepsOnB, shardB.requests().size(), "the refused turn reached no shard");
        } finally {
            gate.countDown();
            shardA.gate(null);
        }
        List<GenerationEvent> first = running.get(30, TimeUnit.SECONDS);
        assertTrue(first.getLast() instanceof Finished);

        // A has committed and let go before its client saw Finished: B's turn runs straight away.
        Finished second = run(b, id, "And now?", "second-on-b");
        assertTrue(second.usage().completionTokens() > 0);
        Session stored = b.sessions().get(id).session();
        assertEquals(List.of("Hello!", "And now?"), stored.turns().stream().map(t -> t.user()).toList(),
                "the refused turns left no trace");
    }

    @Test
    void aDeadGatewaysLeaseExpiresAndALiveOneIsRenewed() throws Exception {
        String id = a.sessions().create(null, "expiring", Map.of()).session().id();
        // A gateway that takes the turn and dies: its lease is never given back nor renewed.
        PostgresSessionStore dead = new PostgresSessionStore(url, table, Clock.systemUTC(), Duration.ofMillis(1500));
        dead.leaseTurn(id, "dead-turn");
        dead.close();
        GatewayException held = assertThrows(GatewayException.class, () -> run(b, id, "Anyone?", "while-held"));
        assertEquals(GatewayException.Kind.FAILED_PRECONDITION, held.kind());
        assertTrue(held.getMessage().contains("request_id dead-turn"), held.getMessage());
        Thread.sleep(1800);
        assertTrue(run(b, id, "Anyone?", "after-expiry").usage().completionTokens() > 0,
                "the session is free once the dead gateway's lease expired");

        // A live lease of 600 ms, renewed while held, still holds the session after three times that.
        try (PostgresSessionStore live = new PostgresSessionStore(url, table, Clock.systemUTC(), Duration.ofMillis(600))) {
            TurnLease lease = live.leaseTurn(id, "long-turn");
            Thread.sleep(1800);
            GatewayException stillHeld = assertThrows(GatewayException.class, () -> run(a, id, "Now?", "during-long"));
            assertTrue(stillHeld.getMessage().contains("request_id long-turn"), stillHeld.getMessage());
            lease.release();
            assertTrue(run(a, id, "Now?", "after-release").usage().completionTokens() > 0);
        }
        GatewayException missing = assertThrows(GatewayException.class, () -> b.store().leaseTurn("no-such-session", "x"));
        assertEquals(GatewayException.Kind.NOT_FOUND, missing.kind());
    }
}
