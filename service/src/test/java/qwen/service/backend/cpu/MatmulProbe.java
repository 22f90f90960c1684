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
 * reported as GB/s of weights streamed) and 16 and 64 tokens (prefill, GFLOP/s), next to a plain
 * streaming read of a 1 GiB off-heap buffer on the same number of threads, the bandwidth decode
 * should approach. The cases run in interleaved rounds and each figure is the best round, so
 * all see the same conditions on a shared machine; the compute rate per CPU-second of this
 * process and the cores it kept busy are printed too, which show when other load interfered.
 * Run:
 *
 * <pre>
 * ./mvnw -q -o -pl service test-compile
 * java --add-modules jdk.incubator.vector -cp service/target/classes:service/target/test-classes \
 *     qwen.service.backend.cpu.MatmulProbe [threads [rounds]]
 * </pre>
 */
public final class MatmulProbe {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    /** Distinct copies of the small matrix, so decode streams from memory and not from L3. */
    private static final int COPIES = 8;
    private static final com.sun.management.OperatingSystemMXBean PROCESS =
            (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();

    public static void main(String[] args) {
        int threads = args.length > 0 ? Integer.parseInt(args[0]) : Runtime.getRuntime().availableProcessors();
        int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 5;
        System.out.printf("%d threads, %d-bit vectors, best of %d rounds%n", threads, F.vectorBitSize(), rounds);
        try (VectorKernels kernels = new VectorKernels(threads); WorkerPool pool = new WorkerPool(threads);
             Arena arena = Arena.ofShared()) {
            MemorySegment buf = arena.allocate(1L << 30, 4096);
            buf.fill((byte) 1);
            Matrix[] mlp = new Matrix[COPIES];
            for (int i = 0; i < COPIES; i++) {
                mlp[i] = bf16(arena, 5504, 2048, i);
            }
            Matrix head = bf16(arena, 151936, 2048, 99);
            float[] sink = new float[threads];
            Case[] cases = {
                new Case("streaming read, 1 GiB", buf.byteSize(), 0, 1, c -> streamingRead(pool, buf, sink)),
                matmul(kernels, mlp, 1, 40),
                matmul(kernels, mlp, 16, 8),
                matmul(kernels, mlp, 64, 2),
                matmul(kernels, new Matrix[] {head}, 1, 2),
                matmul(kernels, new Matrix[] {head}, 16, 1),
                matmul(kernels, new Matrix[] {head}, 64, 1),
            };
            // Interleaved rounds, so every case sees the same conditions on a shared machine.
            for (int round = 0; round < rounds + 2; round++) {
                for (Case c : cases) {
                    c.measure(round >= 2);
                }
            }
            for (Case c : cases) {
                c.print();
            }
            System.out.printf("empty parallel call: %.2f us%n", callOverheadMicros(pool));
        }
    }

    /** One timed operation; keeps the best wall and CPU time per call over the counted rounds. */
    private static final class Case {
        final String name;
        final long bytes;
        final double flops;
        final int calls;
        final java.util.function.IntConsumer op;
        double wall = Double.MAX_VALUE;
        double cpu = Double.MAX_VALUE;

        Case(String name, long bytes, double flops, int calls, java.util.function.IntConsumer op) {
            this.name = name;
            this.bytes = bytes;
            this.flops = flops;
            this.calls = calls;
            this.op = op;
        }

        void measure(boolean count) {
            long cpu0 = PROCESS.getProcessCpuTime();
            long start = System.nanoTime();
            for (int c = 0; c < calls; c++) {
                op.accept(c);
            }
            if (count) {
                wall = Math.min(wall, (System.nanoTime() - start) / 1e9 / calls);
                cpu = Math.min(cpu, (PROCESS.getProcessCpuTime() - cpu0) / 1e9 / calls);
            }
        }

        void print() {
            System.out.printf("%-30s %6.1f GB/s %6.1f GFLOP/s %8.3f ms  (%5.1f GFLOP per CPU-second, %.1f cores busy)%n",
                    name, bytes / wall / 1e9, flops / wall / 1e9, wall * 1e3, flops / cpu / 1e9, cpu / wall);
        }
    }

    private static Case matmul(VectorKernels kernels, Matrix[] ws, int tokens, int calls) {
        Matrix w = ws[0];
        float[] x = new float[tokens * w.cols()];
        java.util.Arrays.fill(x, 0.01f);
        float[] out = new float[tokens * w.rows()];
        String name = String.format("bf16 %d x %d, %d tokens", w.rows(), w.cols(), tokens);
        return new Case(name, w.byteSize(), 2.0 * w.rows() * w.cols() * tokens, calls,
                c -> kernels.matmul(ws[c % ws.length], x, tokens, out));
    }

    static Matrix bf16(Arena arena, int rows, int cols, long seed) {
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

    /** Best-of-5 mean time of a parallel loop that does nothing, one index per thread. */
    private static double callOverheadMicros(WorkerPool pool) {
        int calls = 100_000;
        double best = Double.MAX_VALUE;
        for (int run = 0; run < 7; run++) {
            long start = System.nanoTime();
            for (int c = 0; c < calls; c++) {
                pool.forEachChunk(pool.threads(), 1, (worker, from, to) -> { });
            }
            double micros = (System.nanoTime() - start) / 1e3 / calls;
            if (run >= 2) {
                best = Math.min(best, micros);
            }
        }
        return best;
    }

    /** Sums a buffer, split into one contiguous range per thread. */
    private static void streamingRead(WorkerPool pool, MemorySegment buf, float[] sink) {
        int blocks = 1 << 14;
        long blockBytes = buf.byteSize() / blocks;
        pool.forEachChunk(blocks, (blocks + pool.threads() - 1) / pool.threads(), (worker, from, to) ->
                sink[worker] += sum(buf, from * blockBytes, to * blockBytes));
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
