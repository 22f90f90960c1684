package qwen.service.backend.cpu;

import qwen.service.kv.KvPool;
import qwen.service.kv.LayerKv;
import qwen.service.kv.SequenceKv;

/**
 * A tuning aid, not a test: times {@link VectorKernels#attention} for a prefill of one 1.8B block
 * (16 heads of 128, from position 0), best of 10 calls after 2 warm-up calls, in ms and GFLOP/s
 * (the causal score and value FLOPs). Run:
 *
 * <pre>
 * ./mvnw -q -o -pl service test-compile
 * java --add-modules jdk.incubator.vector -cp service/target/classes:service/target/test-classes \
 *     qwen.service.backend.cpu.AttentionProbe [threads [tokens]]
 * </pre>
 */
public final class AttentionProbe {

    public static void main(String[] args) {
        int threads = args.length > 0 ? Integer.parseInt(args[0]) : Runtime.getRuntime().availableProcessors();
        int tokens = args.length > 1 ? Integer.parseInt(args[1]) : 512;
        int heads = 16;
        int headDim = 128;
        int width = heads * headDim;
        KvPool pool = new KvPool(width, (long) tokens * width * 8 + (1L << 24));
        try (SequenceKv seq = pool.newSequence(1); VectorKernels kernels = new VectorKernels(threads)) {
            LayerKv kv = seq.layer(0);
            KernelTestData.fillKv(kv, tokens, width, 5);
            float[] q = KernelTestData.floats(tokens * width, 3f, 7);
            float[] out = new float[q.length];
            double best = Double.MAX_VALUE;
            for (int r = 0; r < 12; r++) {
                long start = System.nanoTime();
                kernels.attention(q, out, 0, tokens, 0, kv, heads, headDim);
                double secs = (System.nanoTime() - start) / 1e9;
                if (r >= 2) {
                    best = Math.min(best, secs);
                }
            }
            double flops = 4.0 * heads * headDim * tokens * (tokens + 1) / 2.0;
            System.out.printf("%d threads, %d tokens, %d heads of %d: %.1f ms, %.1f GFLOP/s%n", threads, tokens,
                    heads, headDim, best * 1e3, flops / best / 1e9);
        }
    }
}
