package qwen.tools;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Set;
import qwen.service.backend.cpu.CpuBackend;
import qwen.service.backend.cpu.TimedKernels;
import qwen.service.backend.cpu.VectorKernels;
import qwen.service.engine.Generator;
import qwen.service.engine.ShardEngine;
import qwen.service.kv.KvPool;
import qwen.service.model.Checkpoints;
import qwen.service.model.LayerRange;
import qwen.service.model.QwenConfig;
import qwen.service.model.RowGroups;
import qwen.service.model.ShardWeights;
import qwen.service.sampling.SamplingParams;

/**
 * {@code ./qwen bench --profile}: where a prefill step and the decode steps spend their time, per
 * operation (each matrix by name, attention, norms, element-wise), with the GFLOP/s of the
 * matmuls and of attention. The engine runs the vector kernels behind {@link TimedKernels}, on the
 * weights as {@link qwen.service.engine.ShardEngine#open} lays them out for those kernels.
 */
final class OpProfile {

    private OpProfile() {
    }

    static void run(Path model, int threads, int[] longPrompt, int[] shortPrompt, int decodeTokens) throws Exception {
        QwenConfig cfg = Checkpoints.config(model);
        ShardWeights weights = RowGroups.apply(Checkpoints.load(model, LayerRange.whole(cfg.numLayers())));
        TimedKernels timed = new TimedKernels(new VectorKernels(threads));
        try (ShardEngine engine = new ShardEngine(new CpuBackend(weights, timed, "cpu, timed"),
                new KvPool(cfg.projDim(), 2L << 30))) {
            SamplingParams greedy = SamplingParams.greedy(0);
            Generator.generate(engine, Arrays.copyOf(longPrompt, 64), 4, greedy, Set.of(), id -> { });   // warm-up
            timed.reset();
            Generator.Result p = Generator.generate(engine, longPrompt, 1, greedy, Set.of(), id -> { });
            print("prefill of " + longPrompt.length + " tokens", timed.ops(), p.prefillNanos(), longPrompt.length);
            Generator.generate(engine, shortPrompt, 1, greedy, Set.of(), id -> { });
            timed.reset();
            Generator.Result d = Generator.generate(engine, shortPrompt, decodeTokens, greedy, Set.of(), id -> { });
            Map<String, TimedKernels.Op> all = timed.ops();
            print("decode of " + (d.ids().length - 1) + " tokens (prompt step included)", all,
                    d.prefillNanos() + d.decodeNanos(), d.ids().length);
        }
    }

    private static void print(String what, Map<String, TimedKernels.Op> ops, long stepNanos, int tokens) {
        long kernels = ops.values().stream().mapToLong(TimedKernels.Op::nanos).sum();
        System.err.printf("%s: %.3f s (%.2f tok/s), kernels %.3f s, outside kernels %.3f s%n", what, stepNanos / 1e9,
                tokens / (stepNanos / 1e9), kernels / 1e9, (stepNanos - kernels) / 1e9);
        ops.values().stream().sorted((a, b) -> Long.compare(b.nanos(), a.nanos())).forEach(op ->
                System.err.printf("  %-22s %6d calls %8.3f s %5.1f%%%s%n", op.name(), op.calls(), op.nanos() / 1e9,
                        100.0 * op.nanos() / stepNanos,
                        op.flops() > 0 ? String.format("  %6.1f GFLOP/s", op.flops() / op.nanos()) : ""));
    }
}
