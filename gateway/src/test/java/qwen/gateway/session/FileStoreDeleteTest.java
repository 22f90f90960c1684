package qwen.gateway.session;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import qwen.gateway.chat.ChatEngine;
import qwen.gateway.chat.ChatTemplate;
import qwen.gateway.chat.GatewayException;
import qwen.gateway.chat.GenerationEvent;
import qwen.gateway.chat.GenerationEvent.FinishReason;
import qwen.gateway.chat.GenerationEvent.Finished;
import qwen.gateway.chat.PromptBuilder;
import qwen.gateway.shard.Pipeline;
import qwen.gateway.shard.PipelineService;
import qwen.gateway.testing.Await;
import qwen.gateway.testing.FakeShard;
import qwen.gateway.testing.TemporaryDirectory;

/**
 * DeleteSession on one gateway with the embedded (FILE) store, over an in-memory shard whose steps
 * take 20 ms: a running turn is cancelled (its stream ends with FINISH_REASON_CANCELLED) before the
 * delete returns, its KV is freed, and the session stays gone; an idle session's KV is freed; an
 * unknown session is NOT_FOUND.
 */
@Timeout(60)
class FileStoreDeleteTest {

    private TemporaryDirectory dir;
    private FakeShard shard;
    private Pipeline pipeline;
    private ChatEngine engine;
    private SessionService sessions;

    @BeforeEach
    void start() {
        dir = TemporaryDirectory.create("qwen-file-delete");
        shard = new FakeShard("file-gateway:9100", FakeShard.info(0, 2, 2, true, true));
        shard.stepDelay(20);
        pipeline = Pipeline.open(List.of(shard), Duration.ofSeconds(30));
        engine = new ChatEngine(StoreGateway.TOKENIZER, () -> pipeline, 512, 16);
        PipelineService connected = new PipelineService(null) {
            @Override
            public Pipeline pipeline() {
                return pipeline;
            }
        };
        sessions = new SessionService(new FileSessionStore(dir.path(), Clock.systemUTC()), engine,
                new PromptBuilder(new ChatTemplate(StoreGateway.TOKENIZER), StoreGateway.DEFAULTS),
                StoreGateway.TOKENIZER, StoreGateway.DEFAULTS, new SequenceLimits(connected));
    }

    @AfterEach
    void stop() throws Exception {
        engine.close();
        pipeline.close();
        dir.close();
    }

    @Test
    void aRunningTurnIsCancelledAndItsKvFreed() throws Exception {
        Session session = sessions.create(null, "running", Map.of()).session();
        String kv = engine.shardSequenceId(session.sequenceId());
        EventStream turn = EventStream.of(sessions.chat(session.id(), "Tell me a long story", null,
                StoreGateway.greedy(2000), "long-turn"));
        Await.until(turn::hasDelta, Duration.ofSeconds(20), "a token");

        sessions.delete(session.id());
        turn.end().get(1, TimeUnit.SECONDS); // the delete returned once the turn had stopped
        assertEquals(FinishReason.CANCELLED, turn.finished().reason());
        Await.until(() -> shard.heldPositions(kv) == 0 && shard.sequencesHeld() == 0, Duration.ofSeconds(20),
                "the deleted session's KV to be freed");
        assertGone(session.id());
        assertEquals(0, engine.runningSequences());
    }

    @Test
    void anIdleSessionsKvIsFreedAndAnUnknownOneIsNotFound() {
        Session session = sessions.create(null, "idle", Map.of()).session();
        String kv = engine.shardSequenceId(session.sequenceId());
        Finished done = assertInstanceOf(Finished.class, sessions.chat(session.id(), "Hi", null,
                StoreGateway.greedy(2), "idle-turn").collect().asList().await().atMost(Duration.ofSeconds(30)).getLast());
        assertEquals(FinishReason.LENGTH, done.reason());
        assertTrue(shard.heldPositions(kv) > 0, "the idle session's KV is kept");

        sessions.delete(session.id());
        Await.until(() -> shard.heldPositions(kv) == 0, Duration.ofSeconds(20), "the deleted session's KV to be freed");
        assertGone(session.id());
        GatewayException unknown = assertThrows(GatewayException.class, () -> sessions.delete("no-such-session"));
        assertEquals(GatewayException.Kind.NOT_FOUND, unknown.kind());
        assertEquals("session_id: no session no-such-session", unknown.getMessage());
    }

    private void assertGone(String sessionId) {
        GatewayException missing = assertThrows(GatewayException.class, () -> sessions.get(sessionId));
        assertEquals(GatewayException.Kind.NOT_FOUND, missing.kind());
        assertTrue(sessions.list(1000, "").sessions().isEmpty());
        GatewayException again = assertThrows(GatewayException.class, () -> sessions.delete(sessionId));
        assertEquals(GatewayException.Kind.NOT_FOUND, again.kind());
    }
}
