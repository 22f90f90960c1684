package qwen.gateway.routing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletionException;
import java.util.function.BooleanSupplier;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import qwen.gateway.chat.ChatEngine;
import qwen.gateway.chat.GatewayException;
import qwen.gateway.shard.Pipeline;
import qwen.gateway.shard.ShardsReadiness;
import qwen.gateway.routing.RoutedTurns.Result;
import qwen.gateway.testing.Await;
import qwen.gateway.testing.FakeShard;
import qwen.gateway.tokenizer.QwenTokenizer;

/**
 * Readiness over two pipeline replicas (in-memory shards): ready while one replica is up, with
 * every replica's state in the check's data; a session whose replica goes down continues on the
 * other by prefilling its history; with both down the gateway is not ready and turns fail
 * UNAVAILABLE; when a replica returns, the gateway is ready again and sessions go home.
 */
@Timeout(60)
class ReplicaReadinessTest {

    private static final Duration WAIT = Duration.ofSeconds(20);
    private static final QwenTokenizer TOKENIZER = QwenTokenizer.bundled();

    private FakeShard[] shards;
    private Pipeline first;
    private ReplicaRouter router;

    @BeforeEach
    void start() {
        shards = new FakeShard[] {shard("replica-0:9100"), shard("replica-1:9100")};
        first = Pipeline.open(List.of(shards[0]), Duration.ofSeconds(5));
        Pipeline pipeline0 = first;
        List<ReplicaSource> sources = List.of(
                ReplicaSource.shared(List.of(shards[0].address()), () -> pipeline0),
                new ReplicaSource(List.of(shards[1].address()), () -> Pipeline.open(List.of(shards[1]),
                        Duration.ofSeconds(5)), true));
        router = new ReplicaRouter(sources, Duration.ofMillis(50), pipeline -> new ChatEngine(TOKENIZER, pipeline, 256, 16));
    }

    @AfterEach
    void stop() {
        router.close();
        first.close();
    }

    @Test
    void readyWhileOneReplicaServesAndSessionsMoveToIt() {
        waitFor(() -> router.up(0) && router.up(1), "both replicas up");
        HealthCheckResponse both = readiness();
        assertEquals(HealthCheckResponse.Status.UP, both.getStatus());
        assertEquals(Map.of("replicas-up", "2/2", "replica-0", "up", "replica-1", "up"), data(both));

        String session = sessionOn(0);
        int[] history = {9707, 0, 1, 2, 3, 4, 5, 6};
        Result turn1 = run(session, history, "t1");
        assertEquals(0, turn1.started().cachedPromptTokens());
        assertEquals(1, shards[0].sequencesHeld(), "turn 1 ran on replica 0");
        assertEquals(0, shards[1].sequencesHeld());

        // Replica 0's shard goes away: the gateway stays ready, and says which replica is down.
        shards[0].down(true);
        waitFor(() -> !router.up(0), "replica 0 seen down");
        HealthCheckResponse one = readiness();
        assertEquals(HealthCheckResponse.Status.UP, one.getStatus());
        Map<String, Object> data = data(one);
        assertEquals("1/2", data.get("replicas-up"));
        assertEquals("up", data.get("replica-1"));
        assertTrue(String.valueOf(data.get("replica-0")).startsWith("down: ") && String.valueOf(data.get("replica-0"))
                .contains("replica-0:9100"), "replica 0's state names its shard: " + data);
        assertFalse(data.containsKey("problem"));

        // The session's next turn runs on replica 1, which prefills the whole history.
        assertEquals(1, router.route(session));
        int[] longer = concat(history, turn1.finished().completionIds(), new int[] {11, 12, 13});
        Result turn2 = run(session, longer, "t2");
        assertEquals(0, turn2.started().cachedPromptTokens(), "replica 1 holds none of the session");
        assertEquals(longer.length, turn2.started().promptTokens());
        assertTrue(turn2.finished().usage().completionTokens() > 0);
        assertEquals(1, shards[1].sequencesHeld(), "replica 1 now holds the session");

        // Both down: not ready, and a turn fails with UNAVAILABLE instead of waiting.
        shards[1].down(true);
        waitFor(() -> !router.up(1), "replica 1 seen down");
        assertFalse(router.serving());
        HealthCheckResponse none = readiness();
        assertEquals(HealthCheckResponse.Status.DOWN, none.getStatus());
        assertEquals("0/2", data(none).get("replicas-up"));
        assertTrue(String.valueOf(data(none).get("problem")).contains("replica 1"), data(none).toString());
        Throwable failure = assertThrows(CompletionException.class, () -> run(session, longer, "t3"));
        GatewayException unavailable = assertInstanceOf(GatewayException.class, failure.getCause());
        assertEquals(GatewayException.Kind.UNAVAILABLE, unavailable.kind());

        // Replica 0 returns: ready again, and the session goes home.
        shards[0].down(false);
        waitFor(() -> router.up(0), "replica 0 back");
        assertEquals(HealthCheckResponse.Status.UP, readiness().getStatus());
        assertEquals("1/2", data(readiness()).get("replicas-up"));
        assertEquals(0, router.route(session));
        Result turn4 = run(session, concat(longer, turn2.finished().completionIds(), new int[] {14}), "t4");
        assertTrue(turn4.finished().usage().completionTokens() > 0);
    }

    @Test
    void aReplicaThatNeverConnectedIsDownAndSaysWhy() {
        List<ReplicaSource> sources = List.of(
                new ReplicaSource(List.of("nowhere:1"), () -> {
                    throw new GatewayException(GatewayException.Kind.UNAVAILABLE, "replica 0 is not connected");
                }, true),
                ReplicaSource.shared(List.of(shards[1].address()), () -> Pipeline.open(List.of(shards[1]),
                        Duration.ofSeconds(5))));
        try (ReplicaRouter partial = new ReplicaRouter(sources, Duration.ofMillis(50),
                pipeline -> new ChatEngine(TOKENIZER, pipeline, 256, 16))) {
            waitFor(() -> partial.up(1), "replica 1 up");
            HealthCheckResponse response = ShardsReadiness.response(partial.states(), "");
            assertEquals(HealthCheckResponse.Status.UP, response.getStatus());
            assertEquals("down: replica 0 is not connected", data(response).get("replica-0"));
            assertTrue(partial.anyConnected().isPresent(), "the model card comes from replica 1");
            assertEquals(1, partial.route("any-session"));
        }
    }

    private HealthCheckResponse readiness() {
        return ShardsReadiness.response(router.states(), router.serving() ? "" : "no pipeline replica is up: "
                + router.states().stream().map(s -> "replica " + s.index() + " " + s.problem()).toList());
    }

    private static Map<String, Object> data(HealthCheckResponse response) {
        return response.getData().orElseThrow();
    }

    /** A session id that consistent hashing puts on {@code replica} while both are up. */
    private String sessionOn(int replica) {
        for (int i = 0; ; i++) {
            if (router.route("session-" + i) == replica) {
                return "session-" + i;
            }
        }
    }

    private Result run(String session, int[] prompt, String requestId) {
        try {
            return RoutedTurns.run(router, session, prompt, requestId, 3, WAIT);
        } catch (GatewayException e) {
            throw new CompletionException(e);
        }
    }

    private static FakeShard shard(String address) {
        return new FakeShard(address, FakeShard.info(0, 2, 2, true, true));
    }

    private static int[] concat(int[]... parts) {
        return java.util.Arrays.stream(parts).flatMapToInt(java.util.Arrays::stream).toArray();
    }

    private static void waitFor(BooleanSupplier condition, String what) {
        Await.until(condition, WAIT, what);
    }
}
