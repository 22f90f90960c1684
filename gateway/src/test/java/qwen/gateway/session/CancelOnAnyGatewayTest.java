package qwen.gateway.session;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import qwen.gateway.chat.CancelOutcome;
import qwen.gateway.chat.GenerationEvent.FinishReason;
import qwen.gateway.chat.GatewayException;
import qwen.gateway.chat.GenerationEvent;
import qwen.gateway.chat.GenerationEvent.Finished;
import qwen.gateway.chat.GenerationRequest;
import qwen.gateway.chat.GenerationSettings;
import qwen.gateway.testing.Await;
import qwen.gateway.testing.FakeShard;

/**
 * Cancel from any gateway: two gateways (each its own engine over its own in-memory shard, whose
 * steps take 20 ms) share one PostgreSQL store. A stream running on A is cancelled through B: B
 * answers CANCELLED once A has stopped it, A's stream ends with FINISH_REASON_CANCELLED within the
 * bound (one 50 ms poll, a round trip and a step), A's shard holds no KV of it, and no row is
 * left. Unknown and finished ids are NOT_FOUND; a request that ends on its own while the cancel is
 * on its way is ALREADY_FINISHED; a dead gateway's requests are NOT_FOUND once their rows expire;
 * an id running on one gateway is refused on the other.
 */
@Timeout(120)
class CancelOnAnyGatewayTest {

    /** Cancel's answer and the stream's end must come within this of the Cancel (poll 50 ms, steps 20 ms). */
    private static final Duration BOUND = Duration.ofMillis(1500);

    private static String url;
    private static String table;
    private static FakeShard shardA;
    private static StoreGateway a;
    private static StoreGateway b;

    @BeforeAll
    static void start() {
        url = TestPostgres.url();
        table = TestPostgres.freshTable();
        shardA = new FakeShard("gateway-a:9100", FakeShard.info(0, 2, 2, true, true));
        shardA.stepDelay(20);
        a = StoreGateway.over(shardA, url, table);
        b = StoreGateway.over(new FakeShard("gateway-b:9100", FakeShard.info(0, 2, 2, true, true)), url, table);
    }

    @AfterAll
    static void stop() throws Exception {
        StoreGateway.closeAll(url, table, a, b);
    }

    /** A stateless request of up to 2,000 tokens (about 40 s of steps) on {@code gateway}, collecting its events. */
    private static EventStream stream(StoreGateway gateway, String requestId) {
        GenerationSettings settings = GenerationSettings.resolve(StoreGateway.greedy(2000), StoreGateway.DEFAULTS);
        return EventStream.of(gateway.generations().generate(new GenerationRequest(requestId, null,
                "stateless-" + requestId, false, new int[] {1, 2, 3, 4}, settings)));
    }

    @Test
    void aStreamOnOneGatewayIsCancelledThroughTheOther() throws Exception {
        int heldBefore = shardA.sequencesHeld();
        EventStream running = stream(a, "long-on-a");
        waitFor(running::hasDelta, "a token on A");
        assertEquals(heldBefore + 1, shardA.sequencesHeld(), "A's shard holds the stream's KV");

        GatewayException twice = assertThrows(GatewayException.class, () -> b.generations().generate(
                new GenerationRequest("long-on-a", null, "stateless-other", false, new int[] {1},
                        GenerationSettings.resolve(StoreGateway.greedy(2), StoreGateway.DEFAULTS)))
                .collect().asList().await().atMost(Duration.ofSeconds(10)));
        assertEquals(GatewayException.Kind.ALREADY_EXISTS, twice.kind(), "the id runs on A");

        long asked = System.nanoTime();
        assertEquals(CancelOutcome.CANCELLED, b.generations().cancelAnywhere("long-on-a"));
        long answered = System.nanoTime() - asked;
        running.end().get(BOUND.toMillis(), TimeUnit.MILLISECONDS);
        long ended = System.nanoTime() - asked;
        System.out.printf("Cancel through gateway B: answered in %d ms, the stream on A ended %d ms after it%n",
                answered / 1_000_000, ended / 1_000_000);
        assertTrue(answered < BOUND.toNanos(), "B answered after " + answered / 1_000_000 + " ms");
        assertTrue(ended < BOUND.toNanos(), "A's stream ended " + ended / 1_000_000 + " ms after the Cancel");
        Finished finished = assertInstanceOf(Finished.class, running.events().getLast());
        assertEquals(FinishReason.CANCELLED, finished.reason());
        assertTrue(finished.usage().completionTokens() < 2000);

        waitFor(() -> shardA.sequencesHeld() == heldBefore, "A's shard to free the cancelled stream's KV");
        assertFalse(a.store().requests().holds("long-on-a"), "B deleted the answered row");
        assertEquals(CancelOutcome.NOT_FOUND, b.generations().cancelAnywhere("long-on-a"), "it has ended");
        assertEquals(CancelOutcome.NOT_FOUND, a.generations().cancelAnywhere("long-on-a"));
    }

    @Test
    void unknownFinishedAndDeadGatewaysRequestsAreNotFound() throws Exception {
        assertEquals(CancelOutcome.NOT_FOUND, b.generations().cancelAnywhere("never-ran"));

        String session = a.sessions().create(null, "short", Map.of()).session().id();
        Finished done = (Finished) a.run(session, "Hi", "short-on-a", 2).getLast();
        assertTrue(done.usage().completionTokens() > 0);
        waitFor(() -> !a.store().requests().holds("short-on-a"), "the finished request's row to go");
        assertEquals(CancelOutcome.NOT_FOUND, b.generations().cancelAnywhere("short-on-a"));

        // A gateway that registered a request and died: nobody renews its row.
        PostgresRequests requests = a.store().requests();
        assertTrue(requests.claim("dead-gateways", "dead-owner", Duration.ofMillis(300)));
        Thread.sleep(400);
        assertEquals(CancelOutcome.NOT_FOUND, b.generations().cancelAnywhere("dead-gateways"));
        requests.sweep();
        assertFalse(requests.holds("dead-gateways"), "expired rows are swept (by this call or a gateway's poll)");
    }

    @Test
    void aRequestThatEndsWhileTheCancelIsOnItsWayIsAlreadyFinished() throws Exception {
        // The owner here is a gateway that does not poll (this test plays it), so the cancel waits.
        PostgresRequests requests = a.store().requests();
        assertTrue(requests.claim("racing", "slow-owner", Duration.ofSeconds(30)));
        assertFalse(requests.claim("racing", "other-owner", Duration.ofSeconds(30)), "a live id is not taken over");
        CompletableFuture<CancelOutcome> outcome = CompletableFuture.supplyAsync(
                () -> b.generations().cancelAnywhere("racing"));
        waitFor(() -> requests.cancelsFor("slow-owner").contains("racing"), "the cancel's mark");
        requests.finished("racing", "slow-owner");
        assertEquals(CancelOutcome.ALREADY_FINISHED, outcome.get(10, TimeUnit.SECONDS));
        assertFalse(requests.holds("racing"), "the canceller deleted the answered row");
    }

    private static void waitFor(BooleanSupplier condition, String what) {
        Await.until(condition, Duration.ofSeconds(20), what);
    }
}
