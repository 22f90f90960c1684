package qwen.gateway.grpc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import io.quarkus.test.common.QuarkusTestResource;
import io.quarkus.test.common.ResourceArg;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import jakarta.inject.Inject;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import qwen.gateway.chat.Generations;
import qwen.proto.chat.v1.ChatEvent;
import qwen.proto.chat.v1.ChatMessage;
import qwen.proto.chat.v1.ChatRequest;
import qwen.proto.chat.v1.FinishReason;
import qwen.proto.chat.v1.Role;

/**
 * Admission against a tiny KV budget: the shard holds 1 MiB of KV (1,024 positions of the TINY
 * model, in pages of 64) and the gateway queues at most 2 requests. A burst of requests that each
 * reserve 384 positions runs 2 at a time, queues 2, and refuses the rest at once with
 * RESOURCE_EXHAUSTED (gRPC, with a retry-after trailer) or 429 (HTTP, with Retry-After); every
 * admitted request completes.
 */
@QuarkusTest
@QuarkusTestResource(value = ShardResource.class, restrictToAnnotatedClass = true, initArgs = {
    @ResourceArg(name = "shard.qwen.shard.kv-budget-mb", value = "1"),
    @ResourceArg(name = "qwen.gateway.max-queued-requests", value = "2")})
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class AdmissionTest {

    private static final int BURST = 16;
    private static final int MAX_NEW_TOKENS = 300;

    @Inject
    Generations generations;

    @TestHTTPResource("/v1/chat/completions")
    URI completions;

    private ChatClient client;
    private final AtomicInteger mostRunning = new AtomicInteger();
    private final AtomicBoolean sampling = new AtomicBoolean(true);
    private Thread sampler;

    @BeforeEach
    void connect() {
        client = new ChatClient();
        sampler = Thread.ofPlatform().daemon().start(() -> {
            while (sampling.get()) {
                mostRunning.accumulateAndGet(generations.runningSequences(), Math::max);
                try {
                    Thread.sleep(2);
                } catch (InterruptedException e) {
                    return;
                }
            }
        });
    }

    @AfterEach
    void disconnect() throws InterruptedException {
        sampling.set(false);
        sampler.join();
        client.close();
    }

    /** One streamed call's end: its status, trailers, events and how long until it ended. */
    private record Outcome(Status status, Metadata trailers, List<ChatEvent> events, long nanos) {
    }

    @Test
    void overflowIsRefusedAtOnceOverGrpcAndEveryAdmittedRequestCompletes() throws Exception {
        List<CompletableFuture<Outcome>> calls = new ArrayList<>();
        for (int i = 0; i < BURST; i++) {
            CompletableFuture<Outcome> outcome = new CompletableFuture<>();
            long start = System.nanoTime();
            ChatRequest request = ChatRequest.newBuilder()
                    .addMessages(ChatMessage.newBuilder().setRole(Role.ROLE_USER).setContent("Question " + i))
                    .setParams(ChatClient.greedy(MAX_NEW_TOKENS)).build();
            client.async().chat(request, new StreamObserver<>() {
                final List<ChatEvent> events = new ArrayList<>();

                @Override
                public void onNext(ChatEvent event) {
                    events.add(event);
                }

                @Override
                public void onError(Throwable t) {
                    outcome.complete(new Outcome(Status.fromThrowable(t), Status.trailersFromThrowable(t), events,
                            System.nanoTime() - start));
                }

                @Override
                public void onCompleted() {
                    outcome.complete(new Outcome(Status.OK, null, events, System.nanoTime() - start));
                }
            });
            calls.add(outcome);
        }
        Map<Status.Code, Integer> codes = new TreeMap<>();
        for (CompletableFuture<Outcome> call : calls) {
            Outcome outcome = call.get(3, TimeUnit.MINUTES);
            codes.merge(outcome.status().getCode(), 1, Integer::sum);
            if (outcome.status().isOk()) {
                FinishReason reason = outcome.events().getLast().getFinished().getFinishReason();
                assertTrue(reason == FinishReason.FINISH_REASON_LENGTH || reason == FinishReason.FINISH_REASON_STOP,
                        outcome.events().getLast().toString());
            } else {
                assertEquals(Status.Code.RESOURCE_EXHAUSTED, outcome.status().getCode(), outcome.status().toString());
                assertTrue(outcome.events().isEmpty(), "nothing is sent before a refusal");
                assertEquals("1", outcome.trailers().get(GrpcStatuses.RETRY_AFTER));
                assertTrue(outcome.status().getDescription().contains("retry later"), outcome.status().toString());
                assertTrue(outcome.nanos() < TimeUnit.SECONDS.toNanos(5), "refused at once, not after waiting");
            }
        }
        assertTrue(codes.getOrDefault(Status.Code.RESOURCE_EXHAUSTED, 0) >= 1, "some are refused: " + codes);
        assertTrue(codes.getOrDefault(Status.Code.OK, 0) >= 2, "some are admitted: " + codes);
        assertEquals(BURST, codes.values().stream().mapToInt(Integer::intValue).sum(), codes.toString());
        assertTrue(mostRunning.get() <= 2, "1,024 KV positions hold 2 reservations of 384, yet "
                + mostRunning.get() + " ran at once");
    }

    @Test
    void overflowGets429WithRetryAfterOverHttpAndEveryAdmittedRequestCompletes() throws Exception {
        HttpClient http = HttpClient.newHttpClient();
        ObjectMapper json = new ObjectMapper();
        List<CompletableFuture<HttpResponse<String>>> calls = new ArrayList<>();
        for (int i = 0; i < BURST; i++) {
            String body = json.writeValueAsString(Map.of("model", "qwen", "max_tokens", MAX_NEW_TOKENS,
                    "temperature", 0, "messages", List.of(Map.of("role", "user", "content", "Question " + i))));
            calls.add(http.sendAsync(HttpRequest.newBuilder(completions).header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString()));
        }
        Map<Integer, Integer> statuses = new TreeMap<>();
        for (CompletableFuture<HttpResponse<String>> call : calls) {
            HttpResponse<String> response = call.get(3, TimeUnit.MINUTES);
            statuses.merge(response.statusCode(), 1, Integer::sum);
            JsonNode answer = json.readTree(response.body());
            if (response.statusCode() == 200) {
                String reason = answer.at("/choices/0/finish_reason").asText();
                assertTrue(reason.equals("length") || reason.equals("stop"), response.body());
            } else {
                assertEquals(429, response.statusCode(), response.body());
                assertEquals("1", response.headers().firstValue("Retry-After").orElse(null));
                assertEquals("rate_limit_exceeded", answer.at("/error/type").asText(), response.body());
            }
        }
        assertTrue(statuses.getOrDefault(429, 0) >= 1, "some are refused: " + statuses);
        assertTrue(statuses.getOrDefault(200, 0) >= 2, "some are admitted: " + statuses);
        assertTrue(mostRunning.get() <= 2, mostRunning.get() + " ran at once");
    }
}
