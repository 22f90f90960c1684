package qwen.service.backend.cpu;

import static jdk.incubator.vector.VectorOperators.ADD;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import qwen.service.model.DType;
import qwen.service.model.Matrix;

/**
 * A tuning aid, not a test: times {@link VectorKernels#matmul} on bf16 matrices of the 1.8B
 * model's shapes (an MLP matrix 5504 x 2048 and lm_head 151936 x 2048) for one token (decode,
 * reported as GB/s of weights streamed) and 16 tokens (prefill, GFLOP/s), next to a plain
 * streaming read of a 1 GiB off-heap buffer on the same number of threads, the bandwidth decode
 * should approach. Each figure is the best of several runs (the machine may be shared). Run:
 *
 * <pre>
 * ./mvnw -q -o -pl service test-compile
 * java --add-modules jdk.incubator.vector -cp service/target/classes:service/target/test-classes \
 *     qwen.service.backend.cpu.MatmulProbe [threads]
 * </pre>
 */
public final class MatmulProbe {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    /** Distinct copies of the small matrix, so decode streams from memory and not from L3. */
    private static final int COPIES = 8;

    public static void main(String[] args) {
        int threads = args.length > 0 ? Integer.parseInt(args[0]) : Runtime.getRuntime().availableProcessors();
        System.out.printf("%d threads, %d-bit vectors%n", threads, F.vectorBitSize());
        try (VectorKernels kernels = new VectorKernels(threads); Arena arena = Arena.ofShared()) {
            WorkerPool pool = new WorkerPool(threads);
            System.out.printf("streaming read, 1 GiB:        %6.1f GB/s%n", streamingRead(pool, arena));
            pool.close();
            Matrix[] mlp = new Matrix[COPIES];
            for (int i = 0; i < COPIES; i++) {
                mlp[i] = bf16(arena, 5504, 2048, i);
            }
            Matrix[] head = {bf16(arena, 151936, 2048, 99)};
            for (Matrix[] ws : new Matrix[][] {mlp, head}) {
                report(kernels, ws, 1, 5);
                report(kernels, ws, 16, 3);
            }
        }
    }

    private static void report(VectorKernels kernels, Matrix[] ws, int tokens, int runs) {
        Matrix w = ws[0];
        float[] x = new float[tokens * w.cols()];
        java.util.Arrays.fill(x, 0.01f);
        float[] out = new float[tokens * w.rows()];
        int calls = ws.length == 1 ? 2 : 40;
        double best = Double.MAX_VALUE;
        for (int run = 0; run < runs + 2; run++) {
            long start = System.nanoTime();
            for (int c = 0; c < calls; c++) {
                kernels.matmul(ws[c % ws.length], x, tokens, out);
            }
            double seconds = (System.nanoTime() - start) / 1e9 / calls;
            if (run >= 2) {
                best = Math.min(best, seconds);
            }
        }
        System.out.printf("bf16 %6d x %d, %2d tokens: %6.1f GB/s %6.1f GFLOP/s %8.3f ms%n", w.rows(), w.cols(), tokens,
                w.byteSize() / best / 1e9, 2.0 * w.rows() * w.cols() * tokens / best / 1e9, best * 1e3);
    }

    private static Matrix bf16(Arena arena, int rows, int cols, long seed) {
        long n = (long) rows * cols;
        MemorySegment data = arena.allocate(2 * n, 64);
        long state = seed * 0x9E3779B97F4A7C15L + 1;
        for (long i = 0; i < n; i += 2) {
            state = state * 6364136223846793005L + 1442695040888963407L;
            // Two normal bf16 values of magnitude 2^-63 .. 2^-3, random sign and mantissa.
            int pair = (int) (state >>> 32) & 0xBE7FBE7F | 0x20002000;
            data.set(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 2 * i, pair);
        }
        return new Matrix("probe", DType.BF16, rows, cols, data);
    }

    /** Best-of-5 GB/s of summing a 1 GiB buffer, split in one contiguous range per thread. */
    private static double streamingRead(WorkerPool pool, Arena arena) {
        long bytes = 1L << 30;
        MemorySegment buf = arena.allocate(bytes, 4096);
        buf.fill((byte) 1);
        int blocks = 1 << 14;
        long blockBytes = bytes / blocks;
        float[] sink = new float[pool.threads()];
        double best = 0;
        for (int run = 0; run < 7; run++) {
            long start = System.nanoTime();
            pool.forEachChunk(blocks, (blocks + pool.threads() - 1) / pool.threads(), (worker, from, to) ->
                    sink[worker] += sum(buf, from * blockBytes, to * blockBytes));
            double seconds = (System.nanoTime() - start) / 1e9;
            if (run >= 2) {
                best = Math.max(best, bytes / seconds / 1e9);
            }
        }
        return best;
    }

    private static float sum(MemorySegment buf, long from, long to) {
        FloatVector a = FloatVector.zero(F), b = a, c = a, d = a;
        long step = F.vectorByteSize();
        for (long at = from; at < to; at += 4 * step) {
            a = a.add(FloatVector.fromMemorySegment(F, buf, at, ByteOrder.LITTLE_ENDIAN));
            b = b.add(FloatVector.fromMemorySegment(F, buf, at + step, ByteOrder.LITTLE_ENDIAN));
            c = c.add(FloatVector.fromMemorySegment(F, buf, at + 2 * step, ByteOrder.LITTLE_ENDIAN));
            d = d.add(FloatVector.fromMemorySegment(F, buf, at + 3 * step, ByteOrder.LITTLE_ENDIAN));
        }
        return a.add(b).add(c).add(d).reduceLanes(ADD);
    }
}
