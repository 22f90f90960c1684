package qwen.service.backend.cpu;

import qwen.service.model.DType;
import qwen.service.model.Matrix;

/**
 * A tuning aid, not a test: times {@link VectorKernels#matmul} for one token and for 64 tokens
 * on 5504 x 2048 matrices of each GGUF weight type (several copies, so decode streams from
 * memory), and prints the weights per second with the decode rate that would give at
 * Qwen-1.8B's 1.525e9 matrix weights per token. Run:
 *
 * <pre>
 * ./mvnw -q -o -pl service test-compile
 * java --add-modules jdk.incubator.vector -cp service/target/classes:service/target/test-classes \
 *     qwen.service.backend.cpu.QuantProbe [threads [rounds]]
 * </pre>
 */
public final class QuantProbe {

    private static final double WEIGHTS_PER_TOKEN = 1.525e9;

    public static void main(String[] args) {
        int threads = args.length > 0 ? Integer.parseInt(args[0]) : Runtime.getRuntime().availableProcessors();
        int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 5;
        int rows = 5504;
        int cols = 2048;
        int copies = 8;
        DType[] types = {DType.F16, DType.Q8_0, DType.Q4_0};
        Matrix[][] ms = new Matrix[types.length][copies];
        for (int k = 0; k < types.length; k++) {
            for (int c = 0; c < copies; c++) {
                ms[k][c] = KernelTestData.matrix(types[k], rows, cols, c);
            }
        }
        float[] x = KernelTestData.floats(64 * cols, 1f, 9);
        float[] out = new float[64 * rows];
        try (VectorKernels k = new VectorKernels(threads)) {
            for (int round = 0; round < rounds; round++) {
                StringBuilder line = new StringBuilder("round " + round + ":");
                for (int t = 0; t < types.length; t++) {
                    long start = System.nanoTime();
                    for (int rep = 0; rep < 4; rep++) {
                        for (Matrix m : ms[t]) {
                            k.matmul(m, x, 1, out);
                        }
                    }
                    double s = (System.nanoTime() - start) / 1e9;
                    double wps = 4.0 * copies * rows * cols / s;
                    long p0 = System.nanoTime();
                    k.matmul(ms[t][0], x, 64, out);
                    k.matmul(ms[t][1], x, 64, out);
                    double ps = (System.nanoTime() - p0) / 1e9;
                    double pwps = 2.0 * 64 * rows * cols / ps;
                    line.append(String.format("  %s decode %.2f Gw/s (%.1f tok/s) prefill %.1f tok/s",
                            types[t].tag(), wps / 1e9, wps / WEIGHTS_PER_TOKEN, pwps / WEIGHTS_PER_TOKEN));
                }
                System.out.println(line);
            }
        }
    }
}
