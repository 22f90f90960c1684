package qwen.gateway.routing;

import java.time.Duration;
import java.util.List;
import qwen.gateway.chat.GenerationDefaults;
import qwen.gateway.chat.GenerationEvent;
import qwen.gateway.chat.GenerationEvent.Finished;
import qwen.gateway.chat.GenerationEvent.Started;
import qwen.gateway.chat.GenerationRequest;
import qwen.gateway.chat.GenerationSettings;
import qwen.gateway.chat.RequestedParams;

/** A greedy kept-sequence turn through a {@link ReplicaRouter}, as the replica tests run them. */
final class RoutedTurns {

    private RoutedTurns() {
    }

    /** The turn's first and last events. */
    record Result(Started started, Finished finished) {
    }

    /** Runs one turn of at most {@code maxNewTokens} on {@code sequence} to its end, within {@code wait}. */
    static Result run(ReplicaRouter router, String sequence, int[] prompt, String requestId, int maxNewTokens,
                      Duration wait) {
        RequestedParams greedy = new RequestedParams(maxNewTokens, 0f, null, null, null, null, List.of(), false, 0, true);
        GenerationSettings settings = GenerationSettings.resolve(greedy, GenerationDefaults.bundled());
        List<GenerationEvent> events = router.generate(new GenerationRequest(requestId, null, sequence, true, prompt,
                settings)).collect().asList().await().atMost(wait);
        return new Result((Started) events.getFirst(), (Finished) events.getLast());
    }
}
