package qwen.bench.jlama;

import com.github.tjake.jlama.model.AbstractModel;
import com.github.tjake.jlama.model.ModelSupport;
import com.github.tjake.jlama.safetensors.DType;
import com.github.tjake.jlama.safetensors.SafeTensorSupport;
import com.github.tjake.jlama.tensor.AbstractTensor;
import com.github.tjake.jlama.tensor.KvBufferCache;
import com.github.tjake.jlama.tensor.operations.TensorOperationsProvider;
import com.github.tjake.jlama.util.PhysicalCoreExecutor;
import java.lang.management.ManagementFactory;
import java.lang.reflect.Field;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Optional;
import java.util.UUID;

/**
 * Runs Jlama 0.8.4 on a Qwen2-layout twin ({@link Qwen2Twin}) and measures prefill and greedy decode
 * throughput on token ids.
 *
 * <p>What is measured, and how it maps onto Jlama:
 * <ul>
 *   <li>The model is loaded with Jlama's own defaults (the ones its CLI and README use): working memory
 *       {@code F32}, working quantization {@code I8}. For a BF16 checkpoint Jlama itself turns the I8
 *       request into BF16 (AbstractModel: "hack to support Avoid Q8BF16 evals"), so block weights stay the
 *       checkpoint's BF16 bytes (mmapped, never re-quantized), activations are rounded to BF16 before each
 *       block matmul, and the KV cache, norms' outputs and residual stream are F32. Jlama loads
 *       {@code model.embed_tokens} and {@code lm_head} with {@code quantize(workingDType)}, i.e. it makes
 *       F32 copies of those two (2 x 1.24 GB at 1.8B shapes); that is Jlama's behaviour, not ours.</li>
 *   <li>Token ids go straight in: we call {@link AbstractModel#batchForward} for the prompt (Jlama batches
 *       it in chunks of 256 tokens, {@code -Djlama.max_batch_size}), then {@link AbstractModel#forward} one
 *       token at a time, and {@link AbstractModel#sample} with temperature 0 (argmax over the lm_head
 *       logits). This is exactly the loop inside Jlama's {@code generate()}, minus the tokenizer, the
 *       BOS token {@code generate()} always prepends, and its stop-on-EOS check. No BOS is added here
 *       (Qwen-1 never adds one).</li>
 *   <li>Prefill: wall time of {@code batchForward(prompt)} plus sampling the first token (time to first
 *       token); tok/s = prompt length / that time.</li>
 *   <li>Decode: after a prefill of the short prompt (which yields generated token 0), {@code decodeTokens}
 *       single-token steps, each {@code forward} + {@code sample}; tok/s = decodeTokens / their wall time.
 *       Every step runs to the end even if an EOS id is produced (random weights).</li>
 *   <li>Threads: Jlama's {@link PhysicalCoreExecutor} (default max(2, cpus / 2)); MLP activations also use
 *       the common ForkJoinPool. Set with {@link #run(Path, int[], int[], int, int)}.</li>
 * </ul>
 */
public final class JlamaRunner {

    /**
     * One benchmark run.
     *
     * @param prefillTokPerSec prompt tokens / prefill seconds (512-token prompt)
     * @param decodeTokPerSec decode steps / decode seconds (after the 16-token prompt)
     * @param prefillTokens prompt length used for the prefill figure
     * @param prefillSeconds wall time of that prefill, first-token sampling included
     * @param decodeTokens number of timed single-token decode steps
     * @param decodeSeconds wall time of those steps
     * @param loadSeconds time to load the twin into Jlama
     * @param warmupSeconds time spent warming up before the timed runs
     * @param threads Jlama's PhysicalCoreExecutor parallelism
     * @param modelDType dtype Jlama found in the checkpoint
     * @param workingDType Jlama working memory dtype (activations, KV cache)
     * @param workingQType dtype activations are rounded to before the block matmuls
     * @param tensorOps Jlama's tensor-operations provider
     * @param prefillCpuSeconds process CPU time (all threads) during the timed prefill
     * @param decodeCpuSeconds process CPU time (all threads) during the timed decode steps
     * @param loadAverage the machine's 1-minute load average when the timed runs started (cores: see
     *     {@code cpus}); wall-clock figures are only meaningful when it is below the core count
     * @param cpus available processors
     * @param firstTokenAfterPrefill argmax token after the 512-token prompt
     * @param greedyTokens the greedy continuation of the 16-token prompt: token 0 comes from the prefill,
     *     then one per decode step (decodeTokens + 1 ids)
     */
    public record Result(
            double prefillTokPerSec,
            double decodeTokPerSec,
            int prefillTokens,
            double prefillSeconds,
            int decodeTokens,
            double decodeSeconds,
            double loadSeconds,
            double warmupSeconds,
            int threads,
            String modelDType,
            String workingDType,
            String workingQType,
            String tensorOps,
            double prefillCpuSeconds,
            double decodeCpuSeconds,
            double loadAverage,
            int cpus,
            int firstTokenAfterPrefill,
            int[] greedyTokens) {

        /**
         * One-line JSON. Besides the fields it adds {@code prefillTokPerSecByCpu} and
         * {@code decodeTokPerSecByCpu} = tokens * threads / process CPU seconds: what the wall-clock rate
         * would be if Jlama's threads had their cores to themselves. On a shared machine (load average above
         * the core count) only these are comparable between runs.
         */
        public String toJson() {
            return "{\"engine\":\"jlama-0.8.4\""
                    + ",\"prefillTokPerSec\":" + fmt(prefillTokPerSec)
                    + ",\"decodeTokPerSec\":" + fmt(decodeTokPerSec)
                    + ",\"prefillTokens\":" + prefillTokens
                    + ",\"prefillSeconds\":" + fmt(prefillSeconds)
                    + ",\"decodeTokens\":" + decodeTokens
                    + ",\"decodeSeconds\":" + fmt(decodeSeconds)
                    + ",\"loadSeconds\":" + fmt(loadSeconds)
                    + ",\"warmupSeconds\":" + fmt(warmupSeconds)
                    + ",\"threads\":" + threads
                    + ",\"modelDType\":\"" + modelDType + "\""
                    + ",\"workingDType\":\"" + workingDType + "\""
                    + ",\"workingQType\":\"" + workingQType + "\""
                    + ",\"tensorOps\":\"" + tensorOps.replace("\"", "'") + "\""
                    + ",\"prefillTokPerSecByCpu\":" + fmt(prefillTokens * (double) threads / prefillCpuSeconds)
                    + ",\"decodeTokPerSecByCpu\":" + fmt(decodeTokens * (double) threads / decodeCpuSeconds)
                    + ",\"prefillCpuSeconds\":" + fmt(prefillCpuSeconds)
                    + ",\"decodeCpuSeconds\":" + fmt(decodeCpuSeconds)
                    + ",\"loadAverage\":" + fmt(loadAverage)
                    + ",\"cpus\":" + cpus
                    + ",\"firstTokenAfterPrefill\":" + firstTokenAfterPrefill
                    + ",\"greedyTokens\":" + Arrays.toString(greedyTokens).replace(" ", "")
                    + "}";
        }

        private static String fmt(double v) {
            return String.format(java.util.Locale.ROOT, "%.4f", v);
        }
    }

    /** Greedy output of one prompt plus its timings. */
    public record Greedy(int[] tokens, double prefillSeconds, double decodeSeconds, double prefillCpuSeconds,
            double decodeCpuSeconds) {}

    private JlamaRunner() {}

    /** {@link #run(Path, int[], int[], int, int)} with Jlama's default thread count. */
    public static Result run(Path twinDir, int[] promptIds512, int[] promptIds16, int decodeTokens) {
        return run(twinDir, promptIds512, promptIds16, decodeTokens, 0);
    }

    /**
     * Loads the twin, warms up, then measures prefill on {@code promptIds512} and greedy decode of
     * {@code decodeTokens} steps after {@code promptIds16}.
     *
     * @param threads Jlama thread count; 0 keeps Jlama's default. Must be set before anything in Jlama
     *     has started its executor (i.e. on the first load in this JVM).
     */
    public static Result run(Path twinDir, int[] promptIds512, int[] promptIds16, int decodeTokens, int threads) {
        long t0 = System.nanoTime();
        AbstractModel model = load(twinDir, threads);
        double loadSeconds = seconds(System.nanoTime() - t0);
        try {
            // Warm-up: exercise the batched prompt path and the single-token path so the JIT has compiled
            // Jlama's kernels before anything is timed.
            long w0 = System.nanoTime();
            int warmPrompt = Math.min(64, promptIds512.length);
            greedy(model, Arrays.copyOf(promptIds512, warmPrompt), 8);
            greedy(model, promptIds16, 8);
            double warmupSeconds = seconds(System.nanoTime() - w0);

            double loadAverage = ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage();
            Greedy prefill = greedy(model, promptIds512, 0);
            Greedy decode = greedy(model, promptIds16, decodeTokens);

            return new Result(
                    promptIds512.length / prefill.prefillSeconds(),
                    decodeTokens / decode.decodeSeconds(),
                    promptIds512.length,
                    prefill.prefillSeconds(),
                    decodeTokens,
                    decode.decodeSeconds(),
                    loadSeconds,
                    warmupSeconds,
                    PhysicalCoreExecutor.instance.get().getCoreCount(),
                    String.valueOf(model.getWeights().getModelDType()),
                    String.valueOf(model.getWorkingDType()),
                    String.valueOf(workingQType(model)),
                    TensorOperationsProvider.get().name(),
                    prefill.prefillCpuSeconds(),
                    decode.decodeCpuSeconds(),
                    loadAverage,
                    Runtime.getRuntime().availableProcessors(),
                    prefill.tokens()[0],
                    decode.tokens());
        } finally {
            model.close();
        }
    }

    /**
     * Loads a Qwen2-layout directory with Jlama's default dtypes (working F32, quantization request I8, which
     * Jlama turns into BF16 for a BF16 checkpoint; no model re-quantization).
     *
     * @param threads Jlama thread count, 0 for its default
     */
    public static AbstractModel load(Path twinDir, int threads) {
        return ModelSupport.loadModel(
                AbstractModel.InferenceType.FULL_GENERATION,
                twinDir.toFile(),
                null,
                DType.F32,
                DType.I8,
                Optional.empty(),
                threads > 0 ? Optional.of(threads) : Optional.empty(),
                Optional.empty(),
                SafeTensorSupport::loadWeights);
    }

    /**
     * Greedy generation on token ids with a fresh KV cache: prefill {@code prompt} (gives token 0), then
     * {@code steps} single-token decode steps. Returns {@code steps + 1} tokens.
     */
    public static Greedy greedy(AbstractModel model, int[] prompt, int steps) {
        if (prompt.length == 0) {
            throw new IllegalArgumentException("empty prompt");
        }
        int[] out = new int[steps + 1];
        KvBufferCache cache = new KvBufferCache(model);
        // The same paged KV buffer generate() uses (8 MB pages, in memory when no working directory is set).
        try (KvBufferCache.KvBuffer kv = cache.getKvBuffer(UUID.randomUUID());
                AbstractTensor logits = model.makeDenseTensor(model.getConfig().vocabularySize)) {
            long c0 = cpuNanos();
            long p0 = System.nanoTime();
            AbstractTensor last = model.batchForward(prompt, 0, kv);
            int next = model.sample(last.slice(last.shape().first() - 1), 0.0f, 0.0f, logits);
            last.close();
            long p1 = System.nanoTime();
            long c1 = cpuNanos();
            out[0] = next;
            int pos = prompt.length;
            for (int i = 1; i <= steps; i++) {
                AbstractTensor h = model.forward(next, pos++, kv, Optional.empty());
                next = model.sample(h, 0.0f, 0.0f, logits);
                h.close();
                out[i] = next;
            }
            long p2 = System.nanoTime();
            long c2 = cpuNanos();
            return new Greedy(out, seconds(p1 - p0), seconds(p2 - p1), seconds(c1 - c0), seconds(c2 - c1));
        } finally {
            cache.close();
        }
    }

    /**
     * Teacher-forced argmax: the argmax prediction after each prefix of {@code ids} (length ids.length),
     * computed by one batched prefill whose per-position hidden states go through the final norm and lm_head.
     */
    public static int[] teacherForcedArgmax(AbstractModel model, int[] ids) {
        int[] out = new int[ids.length];
        KvBufferCache cache = new KvBufferCache(model);
        try (KvBufferCache.KvBuffer kv = cache.getKvBuffer(UUID.randomUUID());
                AbstractTensor logits = model.makeDenseTensor(model.getConfig().vocabularySize)) {
            AbstractTensor all = model.batchForward(ids, 0, kv);
            for (int i = 0; i < ids.length; i++) {
                out[i] = model.sample(all.slice(i), 0.0f, 0.0f, logits);
            }
            all.close();
        } finally {
            cache.close();
        }
        return out;
    }

    /** Jlama exposes no getter for the activation quantization dtype; read the field. */
    static Object workingQType(AbstractModel model) {
        try {
            Field f = AbstractModel.class.getDeclaredField("workingQType");
            f.setAccessible(true);
            return f.get(model);
        } catch (ReflectiveOperationException | RuntimeException e) {
            return "unknown";
        }
    }

    /** CPU time of this process, all threads (JIT and GC included); -1 when the JVM cannot tell. */
    static long cpuNanos() {
        if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
            return os.getProcessCpuTime();
        }
        return -1;
    }

    private static double seconds(long nanos) {
        return nanos / 1e9;
    }
}
