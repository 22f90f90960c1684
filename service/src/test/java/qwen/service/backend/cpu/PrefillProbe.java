package qwen.service.backend.cpu;

import java.lang.foreign.Arena;
import qwen.service.model.Matrix;

/**
 * A tuning aid, not a test: times {@link VectorKernels#matmul} for a 512-token prompt on the
 * five bf16 matrices of a 1.8B block (c_attn 6144 x 2048, attn.c_proj 2048 x 2048, w1 and w2
 * 5504 x 2048, mlp.c_proj 2048 x 5504), in interleaved rounds, best round each, as GFLOP/s of
 * wall time and per CPU-second of this process (which shows when other load interfered), and
 * the block's five matrices together, the figure prefill tok/s follows. Run:
 *
 * <pre>
 * ./mvnw -q -o -pl service test-compile
 * java --add-modules jdk.incubator.vector -cp service/target/classes:service/target/test-classes \
 *     qwen.service.backend.cpu.PrefillProbe [threads [rounds [tokens]]]
 * </pre>
 */
public final class PrefillProbe {

    private static final com.sun.management.OperatingSystemMXBean PROCESS =
            (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();

    public static void main(String[] args) {
        int threads = args.length > 0 ? Integer.parseInt(args[0]) : Runtime.getRuntime().availableProcessors();
        int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 5;
        int tokens = args.length > 2 ? Integer.parseInt(args[2]) : 512;
        int[][] shapes = {{6144, 2048}, {2048, 2048}, {5504, 2048}, {5504, 2048}, {2048, 5504}};
        String[] names = {"c_attn", "attn.c_proj", "w1", "w2", "mlp.c_proj"};
        try (VectorKernels kernels = new VectorKernels(threads); Arena arena = Arena.ofShared()) {
            Matrix[] ws = new Matrix[shapes.length];
            float[][] xs = new float[shapes.length][];
            float[][] outs = new float[shapes.length][];
            for (int i = 0; i < shapes.length; i++) {
                ws[i] = MatmulProbe.bf16(arena, shapes[i][0], shapes[i][1], i);
                xs[i] = new float[tokens * shapes[i][1]];
                java.util.Arrays.fill(xs[i], 0.01f);
                outs[i] = new float[tokens * shapes[i][0]];
            }
            double[] wall = new double[shapes.length];
            double[] cpu = new double[shapes.length];
            java.util.Arrays.fill(wall, Double.MAX_VALUE);
            java.util.Arrays.fill(cpu, Double.MAX_VALUE);
            double blockWall = Double.MAX_VALUE;
            for (int round = 0; round < rounds + 2; round++) {
                double sum = 0;
                for (int i = 0; i < shapes.length; i++) {
                    long cpu0 = PROCESS.getProcessCpuTime();
                    long start = System.nanoTime();
                    kernels.matmul(ws[i], xs[i], tokens, outs[i]);
                    double s = (System.nanoTime() - start) / 1e9;
                    sum += s;
                    if (round >= 2) {
                        wall[i] = Math.min(wall[i], s);
                        cpu[i] = Math.min(cpu[i], (PROCESS.getProcessCpuTime() - cpu0) / 1e9);
                    }
                }
                if (round >= 2) {
                    blockWall = Math.min(blockWall, sum);
                }
            }
            double blockFlops = 0;
            System.out.printf("%d threads, %d tokens, best of %d rounds%n", threads, tokens, rounds);
            for (int i = 0; i < shapes.length; i++) {
                double flops = 2.0 * shapes[i][0] * shapes[i][1] * tokens;
                blockFlops += flops;
                System.out.printf("%-12s %5d x %5d %8.1f ms %6.1f GFLOP/s (%5.1f per CPU-second)%n", names[i],
                        shapes[i][0], shapes[i][1], wall[i] * 1e3, flops / wall[i] / 1e9, flops / cpu[i] / 1e9);
            }
            System.out.printf("block        %8.1f ms %6.1f GFLOP/s; 24 such blocks: %.1f tok/s%n", blockWall * 1e3,
                    blockFlops / blockWall / 1e9, tokens / (24 * blockWall));
        }
    }
}
