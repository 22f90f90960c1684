package qwen.service.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import qwen.service.model.DType;
import qwen.service.model.Matrix;
import qwen.service.model.QuantBlocks;

/**
 * The Q5_0 / Q4_1 / Q5_1 / Q4_K / Q5_K / Q6_K kernels with 8-bit activations ({@link KQuantDot} and
 * {@link MinQuantDot}, through {@link VectorKernels#matmul} below the packed threshold) against
 * their element-by-element reference {@link ScalarQuantDot} on the same quantized activations
 * ({@link QuantDotCheck}). Tolerance: 1e-5 of the sum of the magnitudes of the terms the kernel
 * adds in f32, sum over elements of (|unitScale * q| + |offset|) * |q_x| * d_x (Q4_1 / Q5_1: |d q|
 * + |m|). A wrong quant, scale, min or group moves a row by about one sub-block's share of that
 * sum, far outside the bound. The prefill tiles ({@link QuantDot#fill}) hold exactly the
 * reference decoder's elements.
 */
class KQuantDotTest {

    private static final VectorKernels TWO = new VectorKernels(2);

    @AfterAll
    static void stopThreads() {
        TWO.close();
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q5_0", "Q4_1", "Q5_1", "Q4_K", "Q5_K", "Q6_K"})
    void matchesScalarReference(DType type) {
        int[][] shapes = type.kQuant()
                ? new int[][] {{1, 256}, {2, 512}, {37, 768}, {9, 2048}, {130, 256}}
                : new int[][] {{1, 32}, {3, 96}, {37, 160}, {9, 5504 / 4}, {64, 2048}};
        for (int[] s : shapes) {
            for (int tokens : new int[] {1, 2, 5}) {
                long seed = 17L * s[0] + s[1] + tokens;
                QuantDotCheck.check(TWO, KernelTestData.matrix(type, s[0], s[1], seed),
                        KernelTestData.floats(tokens * s[1], 3f, seed + 1), tokens);
            }
        }
    }

    /**
     * Every byte of the blocks at its extreme (all bits set: Q5_0 q = 31, Q4_1 q = 15, Q5_1 q = 31,
     * Q4_K q = 15 with scales and mins 63, Q5_K q = 31 likewise, Q6_K q = 63 with scales of -1)
     * against activations at -max and +max in
     * alternation: the short lanes hold the largest products the formats allow without
     * overflowing, and the result is the sum of the decoded elements times x.
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q5_0", "Q4_1", "Q5_1", "Q4_K", "Q5_K", "Q6_K"})
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
                case Q4_1, Q5_1 -> {
                    data.set(le, at, Float.floatToFloat16(0.5f));
                    data.set(le, at + 2, Float.floatToFloat16(-0.25f));
                }
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

    /**
     * The prefill path's tiles: rows dequantized by {@link QuantDot#fill} (from a column offset,
     * into a strided tile) hold the bits of the reference decoder's elements.
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q5_0", "Q4_1", "Q5_1", "Q4_K", "Q5_K", "Q6_K"})
    void fillEqualsReferenceElements(DType type) {
        int rows = 5;
        int cols = 1024;
        Matrix w = KernelTestData.matrix(type, rows, cols, 41);
        int c0 = type.blockSize();
        int stride = cols + 3;
        float[] tile = new float[rows * stride];
        QuantDot.fill(type, w.data(), cols, 1, rows - 1, c0, cols, tile, 2, stride);
        for (int k = 0; k < rows - 1; k++) {
            for (int c = c0; c < cols; c++) {
                assertEquals(Float.floatToRawIntBits(QuantBlocks.element(w, 1 + k, c)),
                        Float.floatToRawIntBits(tile[2 + k * stride + c - c0]), type + " row " + (1 + k) + " col " + c);
            }
        }
    }
}
