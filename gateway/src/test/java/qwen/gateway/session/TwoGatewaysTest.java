package qwen.gateway.session;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import qwen.gateway.chat.ChatEngine;
import qwen.gateway.chat.ChatTemplate;
import qwen.gateway.chat.GenerationDefaults;
import qwen.gateway.chat.GenerationEvent;
import qwen.gateway.chat.GenerationEvent.Finished;
import qwen.gateway.chat.GenerationEvent.Started;
import qwen.gateway.chat.PromptBuilder;
import qwen.gateway.chat.RequestedParams;
import qwen.gateway.shard.Pipeline;
import qwen.gateway.shard.PipelineService;
import qwen.gateway.shard.ShardClient;
import qwen.gateway.testing.ShardProcess;
import qwen.gateway.tokenizer.QwenTokenizer;

/**
 * Two gateways (each its own engine, so its own sequences on the shard, and its own store
 * connection) share one PostgreSQL session table and one real shard. A session whose turns
 * alternate between them ends with the same history, reply for reply, as a session whose turns
 * all go to one gateway: the gateway that did not hold the KV prefills the stored history.
 */
@Timeout(300)
class TwoGatewaysTest {

    private static final QwenTokenizer TOKENIZER = QwenTokenizer.bundled();
    private static final List<String> USER_TURNS = List.of("Hello!", "What is two plus two?", "Thanks, and three?");

    private static String url;
    private static String table;
    private static ShardProcess shard;
    private static Gateway a;
    private static Gateway b;

    /** One gateway's session layer over its own engine and store. */
    private record Gateway(SessionService sessions, ChatEngine engine, Pipeline pipeline, PostgresSessionStore store) {

        static Gateway open(String shardAddress) {
            Pipeline pipeline = Pipeline.open(List.of(ShardClient.create(shardAddress, Duration.ofSeconds(30))),
                    Duration.ofSeconds(60));
            ChatEngine engine = new ChatEngine(TOKENIZER, () -> pipeline, 512, 16);
            PostgresSessionStore store = new PostgresSessionStore(url, table, Clock.systemUTC());
            PipelineService connected = new PipelineService(null) {
                @Override
                public Pipeline pipeline() {
                    return pipeline;
                }
            };
            GenerationDefaults defaults = GenerationDefaults.bundled();
            SessionService sessions = new SessionService(store, engine,
                    new PromptBuilder(new ChatTemplate(TOKENIZER), defaults), TOKENIZER, defaults,
                    new SequenceLimits(connected));
            return new Gateway(sessions, engine, pipeline, store);
        }

        /** One turn to its end: its Started and Finished events. */
        List<GenerationEvent> turn(String sessionId, String message, String requestId) {
            RequestedParams greedy = new RequestedParams(6, 0f, null, null, null, null, List.of(), false, 0, true);
            List<GenerationEvent> events = sessions.chat(sessionId, message, null, greedy, requestId)
                    .collect().asList().await().atMost(Duration.ofSeconds(120));
            return List.of(events.getFirst(), events.getLast());
        }

        void close() {
            engine.close();
            pipeline.close();
            store.close();
        }
    }

    @BeforeAll
    static void start() {
        url = TestPostgres.url();
        table = TestPostgres.freshTable();
        shard = ShardProcess.start("0-1");
        a = Gateway.open(shard.address());
        b = Gateway.open(shard.address());
    }

    @AfterAll
    static void stop() throws Exception {
        for (Gateway g : new Gateway[] {a, b}) {
            if (g != null) {
                g.close();
            }
        }
        if (shard != null) {
            shard.close();
        }
        if (table != null) {
            TestPostgres.drop(url, table);
        }
    }

    @Test
    void alternateTurnsOnTwoGatewaysEqualAllTurnsOnOne() {
        String alternating = a.sessions().create("You are a helpful assistant.", "alternating", Map.of()).session().id();
        String single = a.sessions().create("You are a helpful assistant.", "single", Map.of()).session().id();

        Gateway[] route = {a, b, a};
        for (int i = 0; i < USER_TURNS.size(); i++) {
            List<GenerationEvent> one = a.turn(single, USER_TURNS.get(i), "single-" + i);
            List<GenerationEvent> alt = route[i].turn(alternating, USER_TURNS.get(i), "alt-" + i);
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
