package qwen.service.backend.tornado;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import qwen.service.engine.EngineOptions;
import qwen.service.engine.ShardEngine;
import qwen.service.engine.StepInput;
import qwen.service.engine.StepOutput;
import qwen.service.model.Checkpoints;
import qwen.service.model.LayerRange;
import qwen.service.model.QwenConfig;
import qwen.service.model.RandomCheckpoint;
import qwen.service.model.ShardWeights;
import qwen.service.sampling.SamplingParams;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;

/**
 * The GPU benchmark at Qwen-1.8B shapes (random bf16 weights): decode tok/s at batch 1 and
 * aggregate tok/s at 8, 16, 32, 48 and 64 sequences, prefill tok/s of a 512-token prompt, device memory,
 * agreement with the CPU backend; each decode figure splits its step into the host's input
 * writing, the plan's graphs, the output copy and the engine's sampling. Then the linear kernels'
 * other way on either side of the tiled way's threshold (the rows way at it, the tiled way at
 * half of it) and, on a device with {@link TensorCoreKernels}, their parity and the f32 tiled way
 * beside them (prefill and 64 sequences), on the same plan; then the same model with plain
 * launches (TornadoVM's per-kernel profile). Prints one JSON
 * object per figure. Arguments: [model-dir] [kv-budget-mib] [jfr-file] [plain]; with no model
 * directory it writes the random checkpoint to java.io.tmpdir first; with a JFR file it records
 * 200 batch-1 steps there; plain "false" leaves out the plain-launch part (about 50 s of device
 * time on an H100).
 *
 * <p>Run with the SDK's flags and the shard's: {@code java @$TORNADOVM_HOME/tornado-argfile
 * @service/tornado.args -cp ... qwen.service.backend.tornado.GpuBench} (bench/gpu/run.sh does).
 */
public final class GpuBench {

    private static final SamplingParams GREEDY = SamplingParams.greedy(1);
    /**
     * Largest gap between the device's and the CPU's top-5 logprobs that still counts as agreement
     * (fp16 weights against bf16 ones; measured gaps on random weights are about 4e-6). A wider
     * gap fails the run: its speed figures come from kernels that compute something else.
     */
    private static final double PARITY_BOUND = 1e-2;
    private static int vocab = 151_936;

    private GpuBench() {
    }

    public static void main(String[] args) throws Exception {
        System.exit(run(args));
    }

    /**
     * The whole benchmark; returns 0, or 1 when the parity check failed or the plain-launch part
     * threw (the error is printed as a figure and the rest still runs).
     */
    static int run(String[] args) throws Exception {
        boolean parityOk = true;
        Path model = args.length > 0 && !args[0].isEmpty() ? Path.of(args[0]) : null;
        long kvMiB = args.length > 1 ? Long.parseLong(args[1]) : 4096;
        Path jfr = args.length > 2 && !args[2].isEmpty() ? Path.of(args[2]) : null;
        boolean plain = args.length <= 3 || !args[3].equals("false");
        if (model == null) {
            long t0 = System.nanoTime();
            model = RandomCheckpoint.qwen18B().writeTo(Files.createTempDirectory("qwen-1_8b-random"));
            emit("setup", "checkpoint_write_s", (System.nanoTime() - t0) / 1e9);
        }
        vocab = qwen.service.model.ModelDirectory.open(model).config().vocabSize();
        // The service's configuration: CUDA graphs and tensor cores on.
        try (ShardEngine engine = open(model, kvMiB, true, "")) {
            TornadoBackend backend = (TornadoBackend) engine.backend();
            emit("memory", "device_bytes_mib", backend.deviceBytes() / 1048576.0);
            parityOk &= parity(engine, model, "");
            prefill(engine, 512, "");
            for (int batch : new int[] {1, 8, 16, 32, 48, 64}) {
                decode(engine, batch, 16, batch == 1 ? 128 : 48, "");
            }
            longContext(engine, 2048, 64, "");
            if (jfr != null) {
                record(engine, jfr);
            }
            // Either way through the linear kernels at the tiled way's threshold, on the same plan
            // (the meta carries the switch).
            backend.tiledFrom(TornadoBackend.TILED_FROM + 1);
            decode(engine, TornadoBackend.TILED_FROM, 16, 48, "_rows_way");
            backend.tiledFrom(TornadoBackend.TILED_FROM / 2);
            decode(engine, TornadoBackend.TILED_FROM / 2, 16, 48, "_tiled_way");
            backend.tiledFrom(TornadoBackend.TILED_FROM);
            if (backend.hasTensorCoreKernels()) {
                // The parity prompt (16 rows) through the tensor cores for every matrix: the tiled
                // way from 2 rows, the tensor cores from 1 block (by default its steps have too few);
                // then the f32 tiled way on the same plan where the tensor cores serve by default.
                backend.tiledFrom(2);
                backend.tensorCoreBlocks(1);
                parityOk &= parity(engine, model, "_tensor_cores");
                backend.tensorCoreBlocks(TornadoBackend.TENSOR_CORE_BLOCKS);
                backend.tiledFrom(TornadoBackend.TILED_FROM / 4);
                decode(engine, TornadoBackend.TILED_FROM / 4, 16, 48, "_tiled_way");
                backend.tiledFrom(TornadoBackend.TILED_FROM);
                backend.tensorCores(false);
                parityOk &= parity(engine, model, "_f32_tiled");
                prefill(engine, 512, "_f32_tiled");
                decode(engine, 64, 16, 48, "_f32_tiled");
                backend.tensorCores(true);
            }
        }
        boolean plainFailed = plain && !plainLaunches(model, kvMiB);
        if (!parityOk) {
            System.out.println("{\"figure\":\"parity\",\"error\":\"the device disagreed with the CPU backend beyond "
                    + PARITY_BOUND + " (see parity_vs_cpu): the figures above are not valid\"}");
        }
        return parityOk && !plainFailed ? 0 : 1;
    }

    /**
     * The model again with plain launches: TornadoVM's profiler times each kernel, which it cannot
     * inside a CUDA graph. False when this part threw (printed as a figure).
     */
    private static boolean plainLaunches(Path model, long kvMiB) {
        try (ShardEngine engine = open(model, kvMiB, false, "_plain")) {
            TornadoBackend backend = (TornadoBackend) engine.backend();
            for (int batch : new int[] {1, 64}) {
                decode(engine, batch, 16, batch == 1 ? 128 : 48, "_plain");
                backend.profiling(true);
                decode(engine, batch, 16, 4, "_profiled");
                printProfile("batch_" + batch, backend.lastProfile(), backend.lastOpProfile());
                backend.profiling(false);
            }
            // Per operation, which way through the linear kernels suits 64 rows.
            backend.tiledFrom(65);
            backend.profiling(true);
            decode(engine, 64, 16, 4, "_rows_way_profiled");
            printProfile("batch_64_rows_way", backend.lastProfile(), backend.lastOpProfile());
            backend.tiledFrom(TornadoBackend.TILED_FROM);
            if (backend.hasTensorCoreKernels()) {
                backend.tensorCores(false);
                decode(engine, 64, 16, 4, "_f32_tiled_profiled");
                printProfile("batch_64_f32_tiled", backend.lastProfile(), backend.lastOpProfile());
                backend.tensorCores(true);
            }
            longContext(engine, 2048, 2, "_profiled");
            printProfile("batch_1_context_2048", backend.lastProfile(), backend.lastOpProfile());
            backend.profiling(false);
        } catch (RuntimeException e) {
            System.out.println("{\"figure\":\"plain\",\"error\":\"" + e.toString().replace('"', '\'') + "\"}");
            return false;
        }
        return true;
    }

    /** A JFR recording (the "profile" settings) of 200 batch-1 decode steps, written to {@code file}. */
    private static void record(ShardEngine engine, Path file) throws Exception {
        try (jdk.jfr.Recording recording = new jdk.jfr.Recording(jdk.jfr.Configuration.getConfiguration("profile"))) {
            recording.start();
            decode(engine, 1, 16, 200, "_recorded");
            recording.stop();
            recording.dump(file);
        }
    }

    /**
     * The device against the CPU backend on the same weights: a 16-token prompt, then 8 steps fed
     * the CPU's greedy ids; prints how many arg-maxes agree and the largest gap between the two
     * logprobs of the CPU's top-5 tokens (fp16 weights on the device, bf16 on the CPU); false when
     * that gap is over {@link #PARITY_BOUND} (or a top-5 token the device does not rank).
     */
    private static boolean parity(ShardEngine gpu, Path model, String variant) {
        SamplingParams top5 = SamplingParams.greedy(5);
        try (ShardEngine cpu = ShardEngine.open(new EngineOptions(model, null, EngineOptions.KernelSet.VECTOR,
                Runtime.getRuntime().availableProcessors(), 1L << 28))) {
            int[] next = ids(3, 16);
            int agree = 0;
            double gap = 0;
            int steps = 8;
            for (int s = 0, pos = 0; s < steps; s++) {
                StepInput in = new StepInput("parity", pos, next, null, 0, true, top5);
                qwen.service.sampling.Sample a = step(cpu, List.of(in)).getFirst().sample();
                qwen.service.sampling.Sample b = step(gpu, List.of(in)).getFirst().sample();
                agree += a.id() == b.id() ? 1 : 0;
                for (qwen.service.sampling.TokenLogprob t : a.top()) {
                    double other = b.top().stream().filter(o -> o.id() == t.id()).mapToDouble(o -> o.logprob())
                            .findFirst().orElse(Double.NEGATIVE_INFINITY);
                    gap = Math.max(gap, Math.abs(other - t.logprob()));
                }
                pos += next.length;
                next = new int[] {a.id()};
            }
            cpu.release(List.of("parity"));
            gpu.release(List.of("parity"));
            System.out.printf(Locale.ROOT, "{\"figure\":\"parity_vs_cpu%s\",\"argmax_agree\":%d,\"steps\":%d,"
                    + "\"max_top5_logprob_gap\":%.6f}%n", variant, agree, steps, gap);
            return gap <= PARITY_BOUND;
        }
    }

    /** Per graph of one step: kernel, dispatch and total milliseconds, and their sums; then kernel milliseconds per operation. */
    private static void printProfile(String label, List<long[]> graphs, java.util.Map<String, Long> ops) {
        long kernel = 0;
        long dispatch = 0;
        long total = 0;
        StringBuilder per = new StringBuilder();
        for (long[] g : graphs) {
            kernel += g[0];
            dispatch += g[1];
            total += g[2];
            per.append(per.isEmpty() ? "" : ",").append(String.format(Locale.ROOT, "[%.3f,%.3f,%.3f]", g[0] / 1e6,
                    g[1] / 1e6, g[2] / 1e6));
        }
        System.out.printf(Locale.ROOT, "{\"figure\":\"profile_%s\",\"kernel_ms\":%.3f,\"dispatch_ms\":%.3f,"
                + "\"total_ms\":%.3f,\"graphs_kernel_dispatch_total_ms\":[%s]}%n", label, kernel / 1e6, dispatch / 1e6,
                total / 1e6, per);
        StringBuilder byOp = new StringBuilder();
        ops.forEach((op, ns) -> byOp.append(byOp.isEmpty() ? "" : ",").append(String.format(Locale.ROOT, "\"%s\":%.3f", op,
                ns / 1e6)));
        System.out.printf(Locale.ROOT, "{\"figure\":\"profile_%s_kernel_ms_by_op\",%s}%n", label, byOp);
    }

    /** Opens the whole model on the default device and runs one step (compile, upload, maybe record). */
    private static ShardEngine open(Path model, long kvMiB, boolean cudaGraphs, String variant) {
        long t0 = System.nanoTime();
        QwenConfig cfg = Checkpoints.config(model);
        ShardWeights weights = Checkpoints.load(model, LayerRange.whole(cfg.numLayers()));
        TornadoBackend backend = new TornadoBackend(weights, TornadoExecutionPlan.DEFAULT_DEVICE, 512, kvMiB << 20, cudaGraphs,
                true);
        ShardEngine engine = new ShardEngine(backend, backend.newKvPool(kvMiB << 20));
        step(engine, List.of(new StepInput("warm", 0, ids(1, 8), null, 0, true, GREEDY)));
        engine.release(List.of("warm"));
        emit("setup", "load_compile_upload_s" + variant, (System.nanoTime() - t0) / 1e9);
        System.out.println("{\"device" + variant + "\":\"" + backend.device() + "\"}");
        return engine;
    }

    /** Median of 3 runs of a 512-token prompt in one step (logits of its last row). */
    private static void prefill(ShardEngine engine, int tokens, String variant) {
        double[] s = new double[3];
        for (int r = 0; r < 3; r++) {
            long t = System.nanoTime();
            step(engine, List.of(new StepInput("p" + r, 0, ids(r + 10, tokens), null, 0, true, GREEDY)));
            s[r] = (System.nanoTime() - t) / 1e9;
            engine.release(List.of("p" + r));
        }
        emit("prefill_" + tokens + variant, "tok_per_s", tokens / median(s));
    }

    /** batch sequences prefilled with prompt tokens each, then steps decode steps of the whole batch. */
    private static void decode(ShardEngine engine, int batch, int prompt, int steps, String variant) {
        List<String> names = new ArrayList<>();
        List<StepInput> first = new ArrayList<>();
        for (int b = 0; b < batch; b++) {
            names.add("d" + batch + "_" + b);
            first.add(new StepInput(names.get(b), 0, ids(100 + b, prompt), null, 0, true, GREEDY));
        }
        List<StepOutput> outs = new ArrayList<>();
        int perStep = Math.max(1, 512 / prompt);                 // prefill within the 512-row step buffers
        for (int from = 0; from < batch; from += perStep) {
            outs.addAll(step(engine, first.subList(from, Math.min(batch, from + perStep))));
        }
        double[] stepSeconds = new double[steps];
        double[][] split = new double[4][steps];          // inputs, graphs, outputs, the engine's own (sampling)
        TornadoBackend backend = (TornadoBackend) engine.backend();
        for (int s = 0; s < steps; s++) {
            List<StepInput> next = new ArrayList<>();
            for (int b = 0; b < batch; b++) {
                next.add(new StepInput(names.get(b), prompt + s, new int[] {outs.get(b).sample().id()}, null, 0, true, GREEDY));
            }
            long t = System.nanoTime();
            outs = step(engine, next);
            stepSeconds[s] = (System.nanoTime() - t) / 1e9;
            long[] times = backend.lastTimes();
            for (int i = 0; i < 3; i++) {
                split[i][s] = times[i] / 1e6;
            }
            split[3][s] = stepSeconds[s] * 1e3 - split[0][s] - split[1][s] - split[2][s];
        }
        engine.release(names);
        double median = median(stepSeconds);
        System.out.printf(Locale.ROOT, "{\"figure\":\"decode_batch_%d%s\",\"tok_per_s\":%.1f,\"step_ms_median\":%.3f,"
                + "\"step_ms_min\":%.3f,\"steps\":%d,\"median_ms_inputs_graphs_outputs_sampling\":[%.3f,%.3f,%.3f,%.3f]}%n",
                batch, variant, batch / median, median * 1e3, Arrays.stream(stepSeconds).min().orElseThrow() * 1e3, steps,
                median(split[0]), median(split[1]), median(split[2]), median(split[3]));
    }

    /**
     * Batch-1 decoding after a {@code context}-token prompt, fed in 512-row chunks: how attention
     * over a long sequence weighs on a step.
     */
    private static void longContext(ShardEngine engine, int context, int steps, String variant) {
        int[] prompt = ids(7, context);
        StepOutput out = null;
        for (int from = 0; from < context; from += 512) {
            int[] chunk = Arrays.copyOfRange(prompt, from, Math.min(context, from + 512));
            boolean last = from + chunk.length == context;
            out = step(engine, List.of(new StepInput("long", from, chunk, null, context, last, GREEDY))).getFirst();
        }
        double[] stepSeconds = new double[steps];
        for (int s = 0; s < steps; s++) {
            long t = System.nanoTime();
            out = step(engine, List.of(new StepInput("long", context + s, new int[] {out.sample().id()}, null, 0, true,
                    GREEDY))).getFirst();
            stepSeconds[s] = (System.nanoTime() - t) / 1e9;
        }
        engine.release(List.of("long"));
        double median = median(stepSeconds);
        System.out.printf(Locale.ROOT, "{\"figure\":\"decode_batch_1_context_%d%s\",\"tok_per_s\":%.1f,"
                + "\"step_ms_median\":%.3f,\"steps\":%d}%n", context, variant, 1 / median, median * 1e3, steps);
    }

    private static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        return sorted[sorted.length / 2];
    }

    private static List<StepOutput> step(ShardEngine engine, List<StepInput> inputs) {
        List<StepOutput> outs = engine.step(inputs);
        for (StepOutput o : outs) {
            if (o.failure() != null) {
                throw new IllegalStateException(o.failure().message());
            }
        }
        return outs;
    }

    private static int[] ids(long seed, int n) {
        return new SplittableRandom(seed).ints(n, 0, vocab).toArray();
    }

    private static void emit(String figure, String key, double value) {
        System.out.printf(Locale.ROOT, "{\"figure\":\"%s\",\"%s\":%.2f}%n", figure, key, value);
    }
}
