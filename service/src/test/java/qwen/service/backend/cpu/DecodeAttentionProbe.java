package qwen.service.backend.cpu;

import qwen.service.kv.KvPool;
import qwen.service.kv.SequenceKv;

/**
 * A tuning aid, not a test: times {@link VectorKernels#attention} for decode steps at 1.8B shapes
 * (one query row, 16 heads of 128) over the caches of 24 layers holding {@code positions}
 * positions each, layer after layer as a step reads them, so the cache comes from memory and not
 * from L3 (pass {@code layers} 1 to keep it in cache). Prints microseconds per layer and the rate
 * the cache was read at. Run:
 *
 * <pre>
 * ./mvnw -q -o -pl service test-compile
 * java --add-modules jdk.incubator.vector -cp service/target/classes:service/target/test-classes \
 *     qwen.service.backend.cpu.DecodeAttentionProbe [threads [positions [layers]]]
 * </pre>
 */
public final class DecodeAttentionProbe {

    public static void main(String[] args) {
        int threads = args.length > 0 ? Integer.parseInt(args[0]) : Runtime.getRuntime().availableProcessors();
        int positions = args.length > 1 ? Integer.parseInt(args[1]) : 144;
        int layers = args.length > 2 ? Integer.parseInt(args[2]) : 24;
        int heads = 16;
        int headDim = 128;
        int width = heads * headDim;
        KvPool pool = new KvPool(width, (long) layers * positions * width * 8 + (1L << 26));
        try (SequenceKv seq = pool.newSequence(layers); VectorKernels kernels = new VectorKernels(threads)) {
            for (int l = 0; l < layers; l++) {
                KernelTestData.fillKv(seq.layer(l), positions, width, 5 + l);
            }
            float[] q = KernelTestData.floats(width, 3f, 7);
            float[] out = new float[width];
            double best = Double.MAX_VALUE;
            for (int round = 0; round < 6; round++) {
                long start = System.nanoTime();
                int calls = 0;
                while (System.nanoTime() - start < 1_000_000_000L) {
                    for (int l = 0; l < layers; l++) {
                        kernels.attention(q, out, 0, 1, positions - 1, seq.layer(l), heads, headDim);
                    }
                    calls += layers;
                }
                double perLayer = (System.nanoTime() - start) / 1e9 / calls;
                if (round > 0) {
                    best = Math.min(best, perLayer);
                }
            }
            System.out.printf("%d threads, %d positions, %d layers: %.1f us per layer, cache read at %.1f GB/s%n",
                    threads, positions, layers, best * 1e6, 2.0 * positions * width * Float.BYTES / best / 1e9);
        }
    }
}
