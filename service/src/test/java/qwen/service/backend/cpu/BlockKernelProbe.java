package qwen.service.backend.cpu;

import java.util.Arrays;
import qwen.service.model.DType;
import qwen.service.model.Matrix;

/**
 * A tuning aid, not a test: the block-quantized kernels on one core, timed by this thread's CPU
 * time (so other processes on a shared machine count less) on a 512 x 2048 matrix of each type
 * (in L2/L3, so compute and not memory is measured): one token (the 8-bit activation kernels) and
 * 64 tokens (prefill, the tiles dequantized by fill), in G weights per CPU-second, with the bytes
 * each call allocates once warm (0 for a kernel whose vectors C2 kept in registers). {@code -Drows=16384}
 * makes the matrices larger than the caches, so the kernels read them from memory, as decode does
 * ({@code -Dcols=N} sets their width, 2048 by default; {@code -Dtokens=1,16,64} the token counts). Run:
 *
 * <pre>
 * ./mvnw -q -o -pl service test-compile
 * java --add-modules jdk.incubator.vector -cp service/target/classes:service/target/test-classes \
 *     qwen.service.backend.cpu.BlockKernelProbe [rounds [Q4_0,Q4_0_R16,Q5_0,Q4_1,Q5_1,...]]
 * </pre>
 */
public final class BlockKernelProbe {

    /** Token counts to time ({@code -Dtokens=1,16,64}): 1 is decode, below 32 the 8-bit activation kernels, 32 and up prefill. */
    private static final int[] TOKENS = Arrays.stream(System.getProperty("tokens", "1,64").split(","))
            .mapToInt(Integer::parseInt).toArray();

    public static void main(String[] args) {
        var threads = (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 5;
        DType[] types = Arrays.stream((args.length > 1 ? args[1] : "Q4_0,Q5_0,Q4_1,Q5_1,Q4_K,Q5_K").split(","))
                .map(DType::valueOf).toArray(DType[]::new);
        int rows = Integer.getInteger("rows", 512);
        int cols = Integer.getInteger("cols", 2048);
        Matrix[] ms = new Matrix[types.length];
        for (int i = 0; i < types.length; i++) {
            ms[i] = KernelTestData.matrix(types[i], rows, cols, i);
        }
        int most = Arrays.stream(TOKENS).max().orElse(1);
        float[] x = KernelTestData.floats(most * cols, 1f, 9);
        float[] out = new float[most * rows];
        try (VectorKernels k = new VectorKernels(1)) {
            for (int round = 0; round < rounds; round++) {
                StringBuilder line = new StringBuilder("round " + round + ":");
                for (int t = 0; t < types.length; t++) {
                    for (int tokens : TOKENS) {
                        int reps = Math.max(2, 200 / tokens);
                        long a0 = threads.getCurrentThreadAllocatedBytes();
                        long c0 = threads.getCurrentThreadCpuTime();
                        for (int r = 0; r < reps; r++) {
                            k.matmul(ms[t], x, tokens, out);
                        }
                        long c1 = threads.getCurrentThreadCpuTime();
                        long a1 = threads.getCurrentThreadAllocatedBytes();
                        line.append(String.format("  %s x%d %.2f Gw/s %.1f KB/call", types[t].tag(), tokens,
                                (double) reps * tokens * rows * cols / (c1 - c0), (a1 - a0) / 1024.0 / reps));
                    }
                }
                System.out.println(line);
            }
        }
    }
}
