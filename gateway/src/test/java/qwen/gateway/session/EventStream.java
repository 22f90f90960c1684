package qwen.gateway.session;

import static org.junit.jupiter.api.Assertions.assertInstanceOf;

import io.smallrye.mutiny.Multi;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import qwen.gateway.chat.GenerationEvent;
import qwen.gateway.chat.GenerationEvent.Finished;

/**
 * A generation's events as they arrive, for tests that act while it runs: {@code end} completes
 * when the stream completes (or fails with its error).
 */
record EventStream(List<GenerationEvent> events, CompletableFuture<Void> end) {

    /** Subscribes to events and collects them from now on. */
    static EventStream of(Multi<GenerationEvent> events) {
        EventStream stream = new EventStream(new CopyOnWriteArrayList<>(), new CompletableFuture<>());
        events.subscribe().with(stream.events()::add, stream.end()::completeExceptionally, () -> stream.end().complete(null));
        return stream;
    }

    boolean hasDelta() {
        return events.stream().anyMatch(e -> e instanceof GenerationEvent.Delta);
    }

    /** The last event, which must be the Finished one. */
    Finished finished() {
        return assertInstanceOf(Finished.class, events.getLast());
    }
}
