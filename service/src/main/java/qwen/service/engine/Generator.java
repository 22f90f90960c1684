package qwen.service.engine;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.IntConsumer;
import qwen.service.sampling.Sample;
import qwen.service.sampling.SamplingParams;

/**
 * Single-sequence generation on a whole-model engine: prefill the prompt in one step, then one
 * token per step until a stop id or the token limit. Used by the command line, the benchmark and
 * tests; the gateway drives shards step by step itself.
 */
public final class Generator {

    private static final AtomicLong IDS = new AtomicLong();

    private Generator() {
    }

    /**
     * @param ids generated ids, the stop id included when one ended the run
     * @param samples one per generated id, with its logprobs
     * @param prefillNanos time of the prompt step
     * @param decodeNanos time of all later steps
     */
    public record Result(int[] ids, List<Sample> samples, long prefillNanos, long decodeNanos) {
    }

    /**
     * Generates up to maxNewTokens tokens after the prompt.
     *
     * @param onToken called with each id as soon as it is chosen
     */
    public static Result generate(ShardEngine engine, int[] prompt, int maxNewTokens, SamplingParams params,
                                  Set<Integer> stopIds, IntConsumer onToken) {
        if (!engine.backend().weights().range().embedding() || !engine.backend().weights().range().head()) {
            throw new IllegalArgumentException("generation needs a shard holding the whole model");
        }
        String id = "generate-" + IDS.incrementAndGet();
        List<Sample> samples = new ArrayList<>();
        int[] ids = new int[maxNewTokens];
        int n = 0;
        long t0 = System.nanoTime();
        long prefill = 0;
        try {
            int[] next = prompt;
            int pos = 0;
            while (n < maxNewTokens) {
                StepOutput out = engine.step(List.of(new StepInput(id, pos, next, null, 0, true, params))).getFirst();
                if (out.failure() != null) {
                    throw new IllegalStateException(out.failure().message());
                }
                if (n == 0) {
                    prefill = System.nanoTime() - t0;
                }
                pos += next.length;
                Sample s = out.sample();
                samples.add(s);
                ids[n++] = s.id();
                onToken.accept(s.id());
                if (stopIds.contains(s.id())) {
                    break;
                }
                next = new int[] {s.id()};
            }
        } finally {
            engine.release(List.of(id));
        }
        return new Result(java.util.Arrays.copyOf(ids, n), samples, prefill, System.nanoTime() - t0 - prefill);
    }
}
