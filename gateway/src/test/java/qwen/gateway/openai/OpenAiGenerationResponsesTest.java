package qwen.gateway.openai;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.smallrye.mutiny.Multi;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.jboss.resteasy.reactive.RestMulti;
import org.junit.jupiter.api.Test;
import qwen.gateway.chat.GatewayException;
import qwen.gateway.chat.GenerationEvent;
import qwen.gateway.chat.GenerationEvent.Delta;
import qwen.gateway.chat.GenerationEvent.FinishReason;
import qwen.gateway.chat.GenerationEvent.Finished;
import qwen.gateway.chat.GenerationEvent.Started;
import qwen.gateway.chat.GenerationEvent.Usage;

/**
 * How a generation's events become HTTP bodies, without a server: the frames of a stream, the
 * failure rules before and after the first frame, and cancellation reaching the engine.
 */
class OpenAiGenerationResponsesTest {

    private static final Duration WAIT = Duration.ofSeconds(10);
    private final GenerationResponses responses = new GenerationResponses(new ObjectMapper());
    private final ChatShape shape = new ChatShape("chatcmpl-r1", 1_700_000_000L, "qwen-demo-tiny", null);

    private static final Started STARTED = new Started("r1", null, 20, 0, 5L);
    private static final Finished FINISHED = new Finished(FinishReason.LENGTH, "", "Hi there", new int[] {1, 2},
            new Usage(20, 2, 0), 1, 2, 0);

    @Test
    void streamFramesEndWithUsageAndDone() {
        List<String> frames = collect(responses.respond(Multi.createFrom().items(STARTED,
                new Delta("Hi", new int[] {1}, List.of()), new Delta(" there", new int[] {2}, List.of()), FINISHED),
                true, true, shape));
        assertEquals(6, frames.size(), frames.toString());
        assertTrue(frames.getFirst().startsWith("data: {\"id\":\"chatcmpl-r1\",\"object\":\"chat.completion.chunk\""));
        assertTrue(frames.getFirst().contains("\"delta\":{\"role\":\"assistant\",\"content\":\"\"}"), frames.getFirst());
        assertTrue(frames.get(1).contains("\"delta\":{\"content\":\"Hi\"},\"logprobs\":null,\"finish_reason\":null"),
                frames.get(1));
        assertTrue(frames.get(3).contains("\"delta\":{},\"logprobs\":null,\"finish_reason\":\"length\""), frames.get(3));
        assertTrue(frames.get(4).contains("\"choices\":[],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":2,"
                + "\"total_tokens\":22,\"prompt_tokens_details\":{\"cached_tokens\":0}}"), frames.get(4));
        assertEquals("data: [DONE]\n\n", frames.getLast());
        frames.forEach(frame -> assertTrue(frame.endsWith("\n\n")));
    }

    @Test
    void aRefusalBeforeTheFirstFrameFailsTheResponse() {
        GatewayException full = new GatewayException(GatewayException.Kind.RESOURCE_EXHAUSTED, "queue full");
        RestMulti<String> body = responses.respond(Multi.createFrom().failure(full), true, false, shape);
        Throwable failure = assertThrows(RuntimeException.class, () -> collect(body));
        assertInstanceOf(GatewayException.class, failure);
        assertEquals(429, OpenAiErrors.toResponse(failure).getStatus());
        assertEquals("1", OpenAiErrors.toResponse(failure).getHeaderString("Retry-After"));
    }

    @Test
    void aFailureAfterTheFirstFrameIsAnErrorEventThenDone() {
        GatewayException down = new GatewayException(GatewayException.Kind.UNAVAILABLE, "shard 0 is down");
        Multi<GenerationEvent> events = Multi.createBy().concatenating()
                .streams(Multi.createFrom().items(STARTED), Multi.createFrom().failure(down));
        List<String> frames = collect(responses.respond(events, true, false, shape));
        assertEquals(3, frames.size(), frames.toString());
        assertEquals("data: {\"error\":{\"message\":\"shard 0 is down\",\"type\":\"server_error\",\"param\":null,"
                + "\"code\":\"service_unavailable\"}}\n\n", frames.get(1));
        assertEquals("data: [DONE]\n\n", frames.get(2));
    }

    @Test
    void wholeAnswerIsOneJsonBody() {
        List<String> body = collect(responses.respond(Multi.createFrom().items(STARTED,
                new Delta("Hi there", new int[] {1, 2}, List.of()), FINISHED), false, false, shape));
        assertEquals(1, body.size());
        assertTrue(body.getFirst().startsWith("{\"id\":\"chatcmpl-r1\",\"object\":\"chat.completion\""), body.getFirst());
        assertTrue(body.getFirst().contains("\"message\":{\"role\":\"assistant\",\"content\":\"Hi there\"},"
                + "\"logprobs\":null,\"finish_reason\":\"length\""), body.getFirst());
    }

    @Test
    void cancellingTheResponseCancelsTheGeneration() {
        AtomicBoolean cancelled = new AtomicBoolean();
        Multi<GenerationEvent> endless = Multi.createBy().concatenating()
                .streams(Multi.createFrom().items(STARTED), Multi.createFrom().<GenerationEvent>nothing())
                .onCancellation().invoke(() -> cancelled.set(true));
        RestMulti<String> body = responses.respond(endless, true, false, shape);
        body.select().first(1).collect().asList().await().atMost(WAIT);
        assertTrue(cancelled.get(), "a client that goes away cancels the engine's Multi");
    }

    private static List<String> collect(RestMulti<String> body) {
        return body.collect().asList().await().atMost(WAIT);
    }
}
