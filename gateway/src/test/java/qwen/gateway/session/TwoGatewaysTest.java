package qwen.gateway.session;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import qwen.gateway.chat.GenerationEvent;
import qwen.gateway.chat.GenerationEvent.Finished;
import qwen.gateway.chat.GenerationEvent.Started;
import qwen.gateway.shard.Pipeline;
import qwen.gateway.shard.ShardClient;
import qwen.gateway.testing.ShardProcess;

/**
 * Two gateways (each its own engine, so its own sequences on the shard, and its own store
 * connection) share one PostgreSQL session table and one real shard. A session whose turns
 * alternate between them ends with the same history, reply for reply, as a session whose turns
 * all go to one gateway: the gateway that did not hold the KV prefills the stored history.
 */
@Timeout(300)
class TwoGatewaysTest {

    private static final List<String> USER_TURNS = List.of("Hello!", "What is two plus two?", "Thanks, and three?");

    private static String url;
    private static String table;
    private static ShardProcess shard;
    private static StoreGateway a;
    private static StoreGateway b;

    private static StoreGateway open(String shardAddress) {
        return StoreGateway.open(Pipeline.open(List.of(ShardClient.create(shardAddress, Duration.ofSeconds(30))),
                Duration.ofSeconds(60)), url, table);
    }

    /** One turn to its end: its Started and Finished events. */
    private static List<GenerationEvent> turn(StoreGateway gateway, String sessionId, String message, String requestId) {
        List<GenerationEvent> events = gateway.run(sessionId, message, requestId, 6);
        return List.of(events.getFirst(), events.getLast());
    }

    @BeforeAll
    static void start() {
        url = TestPostgres.url();
        table = TestPostgres.freshTable();
        shard = ShardProcess.start("0-1");
        a = open(shard.address());
        b = open(shard.address());
    }

    @AfterAll
    static void stop() throws Exception {
        StoreGateway.closeAll(url, table, a, b);
        if (shard != null) {
            shard.close();
        }
    }

    @Test
    void alternateTurnsOnTwoGatewaysEqualAllTurnsOnOne() {
        String alternating = a.sessions().create("You are a helpful assistant.", "alternating", Map.of()).session().id();
        String single = a.sessions().create("You are a helpful assistant.", "single", Map.of()).session().id();

        StoreGateway[] route = {a, b, a};
        for (int i = 0; i < USER_TURNS.size(); i++) {
            List<GenerationEvent> one = turn(a, single, USER_TURNS.get(i), "single-" + i);
            List<GenerationEvent> alt = turn(route[i], alternating, USER_TURNS.get(i), "alt-" + i);
            Started started = (Started) alt.getFirst();
            Finished finishedAlt = (Finished) alt.getLast();
            Finished finishedOne = (Finished) one.getLast();
            assertEquals(finishedOne.text(), finishedAlt.text(), "turn " + i + " reply");
            assertEquals(((Started) one.getFirst()).promptTokens(), started.promptTokens(), "turn " + i + " prompt");
            if (i == 1) {
                assertEquals(0, started.cachedPromptTokens(), "gateway B holds no KV of the session: it prefills the history");
            }
            if (i == 2) {
                assertTrue(started.cachedPromptTokens() > 0, "gateway A still holds the first turn's KV");
                assertTrue(started.cachedPromptTokens() < ((Started) one.getFirst()).cachedPromptTokens(),
                        "but not the second turn, which ran on B");
            }
        }
        Session viaB = b.sessions().get(alternating).session();
        Session viaA = a.sessions().get(single).session();
        assertEquals(2 * USER_TURNS.size(), viaB.messages().size());
        assertEquals(viaA.turns(), viaB.turns(), "both sessions hold the same history");
        for (int i = 0; i < USER_TURNS.size(); i++) {
            assertEquals(USER_TURNS.get(i), viaB.turns().get(i).user());
        }
    }
}
