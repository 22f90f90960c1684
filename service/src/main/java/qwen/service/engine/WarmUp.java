package qwen.service.engine;

import java.util.List;
import qwen.service.model.LayerRange;
import qwen.service.model.QwenConfig;
import qwen.service.sampling.SamplingParams;

/**
 * One throwaway step through a freshly opened engine before the shard says it is ready: it pages in
 * the weights, starts the kernels' worker threads and lets the JIT see the hot loops, so that the
 * first real request does not pay for them, and it proves the engine can run a step at all.
 */
public final class WarmUp {

    private static final String SEQUENCE = "shard-warm-up";

    private WarmUp() {
    }

    /**
     * Runs a one-token step (token id 0, or zero hidden rows past the first shard) and releases it.
     *
     * @throws IllegalStateException when the step fails
     */
    public static void run(ShardEngine engine, QwenConfig model, LayerRange range) {
        float[] hidden = range.embedding() ? null : new float[model.hiddenSize()];
        StepInput input = new StepInput(SEQUENCE, 0, new int[] {0}, hidden, 0, range.head(),
                range.head() ? SamplingParams.greedy(0) : null);
        try {
            StepOutput output = engine.step(List.of(input)).getFirst();
            if (output.failure() != null) {
                throw new IllegalStateException("the warm-up step failed: " + output.failure().message());
            }
        } finally {
            engine.release(List.of(SEQUENCE));
        }
    }
}
