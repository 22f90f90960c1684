package qwen.gateway.grpc;

import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static qwen.gateway.grpc.ChatClient.greedy;

import grpc.health.v1.HealthGrpc;
import grpc.health.v1.HealthOuterClass.HealthCheckRequest;
import grpc.health.v1.HealthOuterClass.HealthCheckResponse.ServingStatus;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import io.quarkus.test.common.QuarkusTestResource;
import io.quarkus.test.junit.QuarkusTest;
import jakarta.inject.Inject;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import qwen.gateway.testing.Await;
import qwen.gateway.chat.Generations;
import qwen.gateway.testing.ShardProcess;
import qwen.proto.chat.v1.ChatEvent;
import qwen.proto.chat.v1.ChatRequest;
import qwen.proto.chat.v1.CreateSessionRequest;
import qwen.proto.chat.v1.FinishReason;
import qwen.proto.chat.v1.GetSessionRequest;
import qwen.proto.chat.v1.Session;

/**
 * Faults through the whole gateway: the shard process is killed while three sessions stream, and
 * started again. Each stream ends with UNAVAILABLE, the gateway reports itself down meanwhile
 * (readiness DOWN, gRPC health NOT_SERVING), no session loses its history, and once the shard is
 * back every session's next turn succeeds with no manual step. Also: a client's gRPC deadline
 * cancels the generation on the server.
 */
@QuarkusTest
@QuarkusTestResource(value = ShardResource.class, restrictToAnnotatedClass = true)
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class ShardFaultTest {

    private static final int SESSIONS = 3;

    @Inject
    Generations generations;

    private ChatClient client;

    @BeforeEach
    void connect() {
        client = new ChatClient();
    }

    @AfterEach
    void disconnect() throws InterruptedException {
        client.close();
    }

    /** Collects one streamed Chat call. */
    private static final class Streamed implements StreamObserver<ChatEvent> {
        final List<ChatEvent> events = new ArrayList<>();
        final CountDownLatch firstDelta = new CountDownLatch(1);
        final CompletableFuture<Status> ended = new CompletableFuture<>();

        @Override
        public synchronized void onNext(ChatEvent event) {
            events.add(event);
            if (event.hasDelta()) {
                firstDelta.countDown();
            }
        }

        @Override
        public void onError(Throwable t) {
            ended.complete(Status.fromThrowable(t));
        }

        @Override
        public void onCompleted() {
            ended.complete(Status.OK);
        }
    }

    @Test
    void aShardKilledMidStreamFailsTheStreamsCleanlyAndTheNextTurnsWorkOnceItIsBack() throws Exception {
        ShardProcess shard = ShardResource.shard();
        List<String> sessions = new ArrayList<>();
        for (int i = 0; i < SESSIONS; i++) {
            Session session = client.chat().createSession(CreateSessionRequest.newBuilder().setTitle("fault " + i).build());
            sessions.add(session.getSessionId());
            List<ChatEvent> first = client.turn(turn(session.getSessionId(), "Hello " + i, 6));
            assertTrue(first.getLast().hasFinished(), first.getLast().toString());
        }
        awaitTrue("ready before the fault", () -> ready() && serving());

        List<Streamed> streams = new ArrayList<>();
        for (String session : sessions) {
            Streamed streamed = new Streamed();
            // 5,000 tokens each take seconds, and three fit the shard's KV budget at once.
            client.async().chat(turn(session, "Count to ten thousand, slowly.", 5000), streamed);
            streams.add(streamed);
        }
        for (Streamed streamed : streams) {
            assertTrue(streamed.firstDelta.await(60, TimeUnit.SECONDS), "a stream started");
        }
        shard.kill();
        for (Streamed streamed : streams) {
            Status status = streamed.ended.get(60, TimeUnit.SECONDS);
            assertEquals(Status.Code.UNAVAILABLE, status.getCode(), status.toString());
            assertTrue(status.getDescription().contains(shard.address()), status.getDescription());
        }
        awaitTrue("readiness DOWN and gRPC health NOT_SERVING while the shard is down", () -> !ready() && !serving());
        StatusRuntimeException refused = org.junit.jupiter.api.Assertions.assertThrows(StatusRuntimeException.class,
                () -> client.turn(turn(sessions.getFirst(), "Are you there?", 4)));
        assertEquals(Status.Code.UNAVAILABLE, refused.getStatus().getCode());
        assertEquals(String.valueOf(GrpcStatuses.RETRY_AFTER_UNAVAILABLE_SECONDS),
                refused.getTrailers().get(GrpcStatuses.RETRY_AFTER));
        for (String session : sessions) {
            assertEquals(2, get(session).getMessagesCount(), "the failed turns are not kept, the first one is");
        }

        shard.restart(ShardProcess.DEFAULT_START_TIMEOUT);
        awaitTrue("ready again once the shard is back", () -> ready() && serving());
        for (String session : sessions) {
            List<ChatEvent> next = client.turn(turn(session, "Hello again", 6));
            FinishReason reason = next.getLast().getFinished().getFinishReason();
            assertTrue(reason == FinishReason.FINISH_REASON_STOP || reason == FinishReason.FINISH_REASON_LENGTH,
                    next.getLast().toString());
            assertEquals(4, get(session).getMessagesCount());
        }
    }

    @Test
    void aClientDeadlineCancelsTheGeneration() throws Exception {
        Generations engine = generations;
        awaitTrue("ready", () -> ready() && serving());
        ChatRequest.Builder request = ChatRequest.newBuilder()
                .addMessages(qwen.proto.chat.v1.ChatMessage.newBuilder().setRole(qwen.proto.chat.v1.Role.ROLE_USER)
                        .setContent("Count to a million."));
        client.turn(request.setParams(greedy(4)).build()); // warm: the timed call below starts at once
        Streamed streamed = new Streamed();
        client.async().withDeadlineAfter(4, TimeUnit.SECONDS).chat(request.setParams(greedy(8000)).build(), streamed);
        awaitTrue("the generation runs", 4, () -> engine.runningSequences() == 1);
        assertEquals(Status.Code.DEADLINE_EXCEEDED, streamed.ended.get(60, TimeUnit.SECONDS).getCode());
        // 8,000 tokens would take many seconds more; the deadline ends the work within a step or two.
        awaitTrue("the generation stopped and its KV was freed", 5, () -> engine.runningSequences() == 0
                && client.shardInfo().getSequencesHeld() == 0 && client.shardInfo().getKvBytesInUse() == 0);
    }

    private static ChatRequest turn(String session, String message, int maxNewTokens) {
        return ChatRequest.newBuilder().setSessionId(session).setUserMessage(message).setParams(greedy(maxNewTokens))
                .build();
    }

    private Session get(String id) {
        return client.chat().getSession(GetSessionRequest.newBuilder().setSessionId(id).build());
    }

    private static boolean ready() {
        return given().get("/q/health/ready").statusCode() == 200;
    }

    private boolean serving() {
        try {
            return HealthGrpc.newBlockingStub(client.gatewayChannel).withDeadlineAfter(10, TimeUnit.SECONDS)
                    .check(HealthCheckRequest.newBuilder().setService("qwen.chat.v1.ChatService").build())
                    .getStatus() == ServingStatus.SERVING;
        } catch (StatusRuntimeException e) {
            return false;
        }
    }

    private static void awaitTrue(String what, BooleanSupplier condition) {
        awaitTrue(what, 30, condition);
    }

    private static void awaitTrue(String what, int seconds, BooleanSupplier condition) {
        Await.until(condition, Duration.ofSeconds(seconds), what);
    }
}
