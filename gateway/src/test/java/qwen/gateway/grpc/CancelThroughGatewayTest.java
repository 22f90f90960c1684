package qwen.gateway.grpc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static qwen.gateway.grpc.ChatClient.greedy;

import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.condition.EnabledIfEnvironmentVariable;
import qwen.gateway.chat.CancelOutcome;
import qwen.gateway.chat.ChatEngine;
import qwen.gateway.chat.GenerationDefaults;
import qwen.gateway.chat.GenerationEvent;
import qwen.gateway.chat.GenerationRequest;
import qwen.gateway.chat.GenerationSettings;
import qwen.gateway.chat.RequestedParams;
import qwen.gateway.session.PostgresSessionStore;
import qwen.gateway.session.SharedCancellation;
import qwen.gateway.shard.Pipeline;
import qwen.gateway.testing.Await;
import qwen.gateway.testing.FakeShard;
import qwen.gateway.tokenizer.QwenTokenizer;
import qwen.proto.chat.v1.CancelRequest;
import qwen.proto.chat.v1.CancelResponse;
import qwen.proto.chat.v1.ChatEvent;
import qwen.proto.chat.v1.ChatMessage;
import qwen.proto.chat.v1.ChatRequest;
import qwen.proto.chat.v1.FinishReason;
import qwen.proto.chat.v1.Role;

/**
 * The application with the PostgreSQL session store, against a second gateway sharing its tables
 * (an engine over an in-memory shard, wired as the application wires one): ChatService.Cancel on
 * this gateway stops a stream running on the other, and a Cancel taken by the other stops a gRPC
 * stream running here, each answered CANCELLED and ending with FINISH_REASON_CANCELLED.
 */
@QuarkusTest
@TestProfile(CancelThroughGatewayTest.SharedStore.class)
@EnabledIfEnvironmentVariable(named = "QWEN_TEST_POSTGRES_URL", matches = ".+", disabledReason = "no PostgreSQL"
        + " server: run `export QWEN_TEST_POSTGRES_URL=$(.ci/postgres)` first (.ci/run does)")
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class CancelThroughGatewayTest {

    private static final String TABLE = "qwen_sessions_test_grpc_cancel";

    /** The POSTGRES store in its own table, polled every 50 ms for cancels; the shard of {@link ShardResource}. */
    public static final class SharedStore implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            if (System.getenv("QWEN_TEST_POSTGRES_URL") == null) {
                return Map.of(); // read when tests are discovered, also when the class is then skipped
            }
            return Map.of(
                    "qwen.gateway.sessions.store", "POSTGRES",
                    "qwen.gateway.sessions.jdbc-url", System.getenv("QWEN_TEST_POSTGRES_URL"),
                    "qwen.gateway.sessions.table", TABLE,
                    "qwen.gateway.sessions.cancel-poll-interval", "50ms");
        }

        @Override
        public List<TestResourceEntry> testResources() {
            return List.of(new TestResourceEntry(ShardResource.class));
        }
    }

    private ChatClient client;

    @BeforeEach
    void connect() {
        client = new ChatClient();
    }

    @AfterEach
    void disconnect() throws InterruptedException {
        client.close();
    }

    @AfterAll
    static void dropTables() throws Exception {
        try (Connection c = DriverManager.getConnection(System.getenv("QWEN_TEST_POSTGRES_URL"));
             Statement s = c.createStatement()) {
            s.execute("DROP TABLE IF EXISTS " + TABLE + ", " + TABLE + "_requests");
        }
    }

    @Test
    void cancelsCrossBetweenThisGatewayAndAnother() throws Exception {
        QwenTokenizer tokenizer = QwenTokenizer.bundled();
        FakeShard shard = new FakeShard("other-gateway:9100", FakeShard.info(0, 2, 2, true, true));
        shard.stepDelay(20);
        Pipeline pipeline = Pipeline.open(List.of(shard), Duration.ofSeconds(30));
        try (PostgresSessionStore store = new PostgresSessionStore(System.getenv("QWEN_TEST_POSTGRES_URL"), TABLE,
                Clock.systemUTC());
             SharedCancellation other = store.shareCancellation(new ChatEngine(tokenizer, () -> pipeline, 512, 16),
                     Duration.ofMillis(50))) {
            // A stream on the other gateway, cancelled through this one's gRPC Cancel.
            RequestedParams params = new RequestedParams(2000, 0f, null, null, null, null, List.of(), false, 0, true);
            List<GenerationEvent> events = new CopyOnWriteArrayList<>();
            CompletableFuture<Void> end = new CompletableFuture<>();
            other.generate(new GenerationRequest("on-the-other", null, "stateless-on-the-other", false,
                            new int[] {1, 2, 3}, GenerationSettings.resolve(params, GenerationDefaults.bundled())))
                    .subscribe().with(events::add, end::completeExceptionally, () -> end.complete(null));
            Await.until(() -> events.stream().anyMatch(e -> e instanceof GenerationEvent.Delta), Duration.ofSeconds(20),
                    "a token on the other gateway");
            CancelResponse answer = client.chat().cancel(CancelRequest.newBuilder().setRequestId("on-the-other").build());
            assertTrue(answer.getFound());
            assertEquals(qwen.proto.chat.v1.CancelOutcome.CANCEL_OUTCOME_CANCELLED, answer.getOutcome());
            end.get(5, TimeUnit.SECONDS);
            assertEquals(GenerationEvent.FinishReason.CANCELLED,
                    assertInstanceOf(GenerationEvent.Finished.class, events.getLast()).reason());
            Await.until(() -> shard.sequencesHeld() == 0, Duration.ofSeconds(10), "the other gateway's KV freed");

            // A gRPC stream on this gateway, cancelled through the other.
            var stream = client.chat().chat(ChatRequest.newBuilder().addMessages(ChatMessage.newBuilder()
                    .setRole(Role.ROLE_USER).setContent("Hi")).setRequestId("on-this").setParams(greedy(4000)).build());
            assertTrue(stream.next().hasStarted());
            assertTrue(stream.next().hasDelta());
            assertEquals(CancelOutcome.CANCELLED, other.cancelAnywhere("on-this"));
            ChatEvent last = null;
            while (stream.hasNext()) {
                last = stream.next();
            }
            assertEquals(FinishReason.FINISH_REASON_CANCELLED, last.getFinished().getFinishReason());
        } finally {
            pipeline.close();
        }
    }
}
