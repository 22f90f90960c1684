package qwen.service.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import qwen.service.model.DType;
import qwen.service.model.KQuantBlocks;
import qwen.service.model.Matrix;
import qwen.service.model.QuantBlocks;

/**
 * The Q5_0 / Q4_K / Q5_K / Q6_K kernels with 8-bit activations ({@link KQuantDot}, through
 * {@link VectorKernels#matmul} below the packed threshold) against their element-by-element
 * reference {@link ScalarQuantDot} on the same quantized activations. Tolerance: 1e-5 of the sum
 * of the magnitudes of the terms the kernel adds in f32, sum over elements of
 * (|unitScale * q| + |offset|) * |q_x| * d_x. A wrong quant, scale, min or group moves a row by
 * about one sub-block's share of that sum, far outside the bound.
 */
class KQuantDotTest {

    private static final VectorKernels TWO = new VectorKernels(2);

    @AfterAll
    static void stopThreads() {
        TWO.close();
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q5_0", "Q4_K", "Q5_K", "Q6_K"})
    void matchesScalarReference(DType type) {
        int[][] shapes = type.kQuant()
                ? new int[][] {{1, 256}, {2, 512}, {37, 768}, {9, 2048}, {130, 256}}
                : new int[][] {{1, 32}, {3, 96}, {37, 160}, {9, 5504 / 4}, {64, 2048}};
        for (int[] s : shapes) {
            for (int tokens : new int[] {1, 2, 5}) {
                long seed = 17L * s[0] + s[1] + tokens;
                check(KernelTestData.matrix(type, s[0], s[1], seed), KernelTestData.floats(tokens * s[1], 3f, seed + 1),
                        tokens);
            }
        }
    }

    /**
     * Every byte of the blocks at its extreme (all bits set: Q5_0 q = 31, Q4_K q = 15 with scales
     * and mins 63, Q5_K q = 31 likewise, Q6_K q = 63 with scales of -1) against activations at -max and +max in
     * alternation: the short lanes hold the largest products the formats allow without
     * overflowing, and the result is the sum of the decoded elements times x.
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q5_0", "Q4_K", "Q5_K", "Q6_K"})
    void extremeQuantsDoNotOverflow(DType type) {
        int rows = 3;
        int cols = 512;
        MemorySegment data = Arena.ofAuto().allocate(rows * type.rowBytes(cols));
        data.fill((byte) -1);
        ValueLayout.OfShort le = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (long b = 0; b < data.byteSize() / type.blockBytes(); b++) {
            long at = b * type.blockBytes();
            switch (type) {
                case Q5_0 -> data.set(le, at, Float.floatToFloat16(0.5f));
                case Q4_K, Q5_K -> {
                    data.set(le, at, Float.floatToFloat16(0.01f));
                    data.set(le, at + 2, Float.floatToFloat16(0.02f));
                }
                case Q6_K -> data.set(le, at + 208, Float.floatToFloat16(0.25f));
                default -> throw new IllegalStateException();
            }
        }
        Matrix w = new Matrix("extreme", type, rows, cols, data);
        float[] x = new float[cols];
        for (int i = 0; i < cols; i++) {
            x[i] = i % 64 < 32 ? -7f : 7f;
        }
        float[] out = new float[rows];
        TWO.matmul(w, x, 1, out);
        double expected = 0;
        double magnitude = 0;
        for (int i = 0; i < cols; i++) {
            expected += (double) QuantBlocks.element(w, 0, i) * x[i];
            magnitude += Math.abs((double) QuantBlocks.element(w, 0, i) * x[i]);
        }
        for (int r = 0; r < rows; r++) {
            assertEquals(expected, out[r], 1e-5 * magnitude, "row " + r);
        }
    }

    private static void check(Matrix w, float[] x, int tokens) {
        int rows = w.rows();
        int cols = w.cols();
        Q8Activations a = new Q8Activations().quantize(x, tokens, cols);
        float[] expected = new float[tokens * rows];
        ScalarQuantDot.matmul(w, a, tokens, expected);
        float[] actual = new float[tokens * rows];
        TWO.matmul(w, x, tokens, actual);
        for (int t = 0; t < tokens; t++) {
            for (int r = 0; r < rows; r++) {
                double scale = 0;
                for (int i = 0; i < cols; i++) {
                    double term = w.dtype().kQuant()
                            ? Math.abs(KQuantBlocks.unitScale(w, r, i) * KQuantBlocks.quant(w, r, i))
                                    + Math.abs(KQuantBlocks.offset(w, r, i))
                            : Math.abs(QuantBlocks.scale(w, r, i) * QuantBlocks.quant(w, r, i));
                    scale += term * Math.abs(a.quants()[t * cols + i]) * a.scales()[t * cols / 32 + i / 32];
                }
                double bound = 1e-5 * scale + 1e-30;
                float e = expected[t * rows + r];
                float g = actual[t * rows + r];
                if (!(Math.abs(g - e) <= bound)) {
                    fail(w.name() + " token " + t + " row " + r + ": expected " + e + ", got " + g + " (bound " + bound + ")");
                }
            }
        }
    }
}
