package qwen.gateway.openai;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.smallrye.mutiny.Multi;
import jakarta.ws.rs.core.HttpHeaders;
import jakarta.ws.rs.core.MediaType;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.jboss.resteasy.reactive.RestMulti;
import qwen.gateway.chat.GatewayException;
import qwen.gateway.chat.GenerationEvent;
import qwen.gateway.chat.GenerationEvent.Delta;
import qwen.gateway.chat.GenerationEvent.Finished;
import qwen.gateway.chat.GenerationEvent.Started;

/**
 * Sends a generation as one HTTP answer: a single JSON body, or Server-Sent Events
 * ({@code data: <json>} frames ending with {@code data: [DONE]}).
 *
 * <p>Both travel as a {@link RestMulti}, so that one endpoint can answer either way as the body's
 * {@code stream} field asks, and so that nothing is written before the request is admitted: a
 * request refused by the engine (429, 503, 404 for a session) still gets its HTTP status and error
 * JSON. A failure after the first frame arrives as a {@code data: {"error": ...}} frame followed by
 * {@code [DONE]}, as vLLM sends it. When the client goes away, Quarkus cancels the subscription,
 * which stops the generation and frees its KV.
 */
final class GenerationResponses {

    static final String DONE_FRAME = "data: [DONE]\n\n";

    private final ObjectMapper json;

    GenerationResponses(ObjectMapper json) {
        this.json = json;
    }

    /**
     * @param stream Server-Sent Events (true) or one JSON body
     * @param includeUsage when streaming, send the usage chunk before {@code [DONE]}
     */
    RestMulti<String> respond(Multi<GenerationEvent> events, boolean stream, boolean includeUsage,
                              ResponseShape shape) {
        if (!stream) {
            Multi<String> body = events.collect().asList().map(list -> write(whole(list, shape))).toMulti();
            return RestMulti.fromMultiData(body)
                    .status(200)
                    .header(HttpHeaders.CONTENT_TYPE, MediaType.APPLICATION_JSON)
                    .build();
        }
        AtomicBoolean begun = new AtomicBoolean();
        Multi<String> frames = events
                .onItem().transformToIterable(event -> {
                    List<String> out = frames(event, includeUsage, shape);
                    if (!out.isEmpty()) {
                        begun.set(true);
                    }
                    return out;
                })
                .onFailure(failure -> begun.get())
                .recoverWithMulti(failure -> Multi.createFrom().items(
                        frame(OpenAiErrors.body(failure)), DONE_FRAME));
        return RestMulti.fromMultiData(frames)
                .status(200)
                .header(HttpHeaders.CONTENT_TYPE, MediaType.SERVER_SENT_EVENTS)
                .header(HttpHeaders.CACHE_CONTROL, "no-cache")
                .build();
    }

    private List<String> frames(GenerationEvent event, boolean includeUsage, ResponseShape shape) {
        List<String> out = new ArrayList<>(3);
        switch (event) {
            case Started started -> add(out, shape.started(started));
            case Delta delta -> add(out, shape.delta(delta));
            case Finished finished -> {
                add(out, shape.finished(finished));
                if (includeUsage) {
                    add(out, shape.usage(finished));
                }
                out.add(DONE_FRAME);
            }
        }
        return out;
    }

    private void add(List<String> out, Object chunk) {
        if (chunk != null) {
            out.add(frame(chunk));
        }
    }

    private String frame(Object chunk) {
        return "data: " + write(chunk) + "\n\n";
    }

    private static Object whole(List<GenerationEvent> events, ResponseShape shape) {
        Started started = null;
        Finished finished = null;
        List<Delta> deltas = new ArrayList<>();
        for (GenerationEvent event : events) {
            switch (event) {
                case Started s -> started = s;
                case Delta d -> deltas.add(d);
                case Finished f -> finished = f;
            }
        }
        if (started == null || finished == null) {
            throw new GatewayException(GatewayException.Kind.INTERNAL,
                    "the generation ended without its " + (started == null ? "Started" : "Finished") + " event");
        }
        return shape.whole(started, deltas, finished);
    }

    private String write(Object body) {
        try {
            return json.writeValueAsString(body);
        } catch (JsonProcessingException e) {
            throw new UncheckedIOException(e);
        }
    }
}
