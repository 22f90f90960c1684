package qwen.gateway.session;

import io.smallrye.mutiny.Multi;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import qwen.gateway.chat.ChatEngine;
import qwen.gateway.chat.ChatTemplate;
import qwen.gateway.chat.GenerationDefaults;
import qwen.gateway.chat.GenerationEvent;
import qwen.gateway.chat.PromptBuilder;
import qwen.gateway.chat.RequestedParams;
import qwen.gateway.shard.Pipeline;
import qwen.gateway.shard.PipelineService;
import qwen.gateway.testing.FakeShard;
import qwen.gateway.tokenizer.QwenTokenizer;

/**
 * One gateway of a test in which several share a PostgreSQL session table, wired as the
 * application wires it: its own engine over its own pipeline, its own store connection, the
 * engine's requests registered in the store ({@link SharedCancellation}) and the session layer over
 * both. A test opens two of these to act as two gateway replicas.
 */
record StoreGateway(SessionService sessions, ChatEngine engine, SharedCancellation generations, Pipeline pipeline,
                    PostgresSessionStore store) implements AutoCloseable {

    static final QwenTokenizer TOKENIZER = QwenTokenizer.bundled();
    static final GenerationDefaults DEFAULTS = GenerationDefaults.bundled();

    /** Over one fake shard that holds the whole model, as {@link #open(Pipeline, String, String)}. */
    static StoreGateway over(FakeShard shard, String url, String table) {
        return open(Pipeline.open(List.of(shard), Duration.ofSeconds(30)), url, table);
    }

    /** Over {@code pipeline}, with the default turn lease and a 50 ms cancel poll. */
    static StoreGateway open(Pipeline pipeline, String url, String table) {
        ChatEngine engine = new ChatEngine(TOKENIZER, () -> pipeline, 512, 16);
        PostgresSessionStore store = new PostgresSessionStore(url, table, Clock.systemUTC());
        SharedCancellation generations = store.shareCancellation(engine, Duration.ofMillis(50));
        PipelineService connected = new PipelineService(null) {
            @Override
            public Pipeline pipeline() {
                return pipeline;
            }
        };
        SessionService sessions = new SessionService(store, generations,
                new PromptBuilder(new ChatTemplate(TOKENIZER), DEFAULTS), TOKENIZER, DEFAULTS,
                new SequenceLimits(connected));
        return new StoreGateway(sessions, engine, generations, pipeline, store);
    }

    /** Greedy generation of at most {@code maxNewTokens}. */
    static RequestedParams greedy(int maxNewTokens) {
        return new RequestedParams(maxNewTokens, 0f, null, null, null, null, List.of(), false, 0, true);
    }

    /** A session turn, started when subscribed. */
    Multi<GenerationEvent> turn(String sessionId, String message, String requestId, int maxNewTokens) {
        return sessions.chat(sessionId, message, null, greedy(maxNewTokens), requestId);
    }

    /** A session turn run to its end: every event. */
    List<GenerationEvent> run(String sessionId, String message, String requestId, int maxNewTokens) {
        return turn(sessionId, message, requestId, maxNewTokens).collect().asList().await()
                .atMost(Duration.ofSeconds(120));
    }

    /** Closes the gateways that were opened (null: not opened) and drops the table they shared, if made. */
    static void closeAll(String url, String table, StoreGateway... gateways) throws Exception {
        for (StoreGateway gateway : gateways) {
            if (gateway != null) {
                gateway.close();
            }
        }
        if (table != null) {
            TestPostgres.drop(url, table);
        }
    }

    @Override
    public void close() throws Exception {
        generations.close();
        pipeline.close();
        store.close();
    }
}
