package qwen.service.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import qwen.service.model.DType;
import qwen.service.model.Matrix;
import qwen.service.model.QuantBlocks;

/**
 * The Q8_0 / Q4_0 kernels with 8-bit activations ({@link QuantDot}, through
 * {@link VectorKernels#matmul} below the packed path's token count) against their scalar
 * reference {@link ScalarQuantDot} on the same quantized activations ({@link QuantDotCheck}).
 *
 * <p>Tolerance: |fast - reference| <= 1e-5 * sum over blocks of |d_w d_x| sum |q_w q_x|. The
 * integer block sums are exact in both; what differs is the f32 rounding of each block's scaled
 * sum and of the running total (about cols / 256 additions of eight lanes), against the
 * reference's double. A wrong quant, scale or block moves a row by about one block's share,
 * 1 / (cols / 32) of that scale, far outside the bound.
 */
class QuantDotTest {

    private static final ValueLayout.OfShort LE_SHORT =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final VectorKernels TWO = new VectorKernels(2);

    @AfterAll
    static void stopThreads() {
        TWO.close();
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q8_0", "Q4_0", "Q4_G128"})
    void matchesScalarReference(DType type) {
        int[][] shapes = {{1, 32}, {2, 64}, {3, 96}, {37, 160}, {64, 2048}, {9, 5504 / 4}, {130, 32}};
        for (int[] s : shapes) {
            int cols = KernelTestData.cols(type, s[1]);
            for (int tokens : new int[] {1, 2, 5}) {
                long seed = 17L * s[0] + s[1] + tokens;
                QuantDotCheck.check(TWO, KernelTestData.matrix(type, s[0], cols, seed), KernelTestData.floats(tokens * cols, 3f, seed + 1),
                        tokens);
            }
        }
    }

    /**
     * The largest products the formats allow: Q8_0 quants of -128 (a file may hold them, though
     * the encoder never writes one) and Q4_0 / Q4_G128 nibbles of 0 (-8) against activations at -max and
     * +max in alternation, so the short lanes reach 2 * 128 * 127 without overflowing.
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q8_0", "Q4_0", "Q4_G128"})
    void extremeQuantsDoNotOverflow(DType type) {
        int rows = 5;
        int cols = 256;
        MemorySegment data = Arena.ofAuto().allocate(rows * type.rowBytes(cols));
        for (long b = 0; b < data.byteSize() / type.blockBytes(); b++) {
            long at = b * type.blockBytes();
            data.set(LE_SHORT, at, Float.floatToFloat16(0.5f));
            for (int i = 2; i < type.blockBytes(); i++) {
                data.set(ValueLayout.JAVA_BYTE, at + i, type == DType.Q8_0 ? (byte) -128 : 0);
            }
        }
        Matrix w = new Matrix("extreme", type, rows, cols, data);
        float[] x = new float[cols];
        for (int i = 0; i < cols; i++) {
            x[i] = i % 64 < 32 ? -7f : 7f;
        }
        float[] out = new float[rows];
        TWO.matmul(w, x, 1, out);
        double q = type == DType.Q8_0 ? -128 : -8;
        double expected = 0;
        for (int i = 0; i < cols; i++) {
            expected += 0.5 * q * x[i];
        }
        for (int r = 0; r < rows; r++) {
            assertEquals(expected, out[r], 1e-5 * Math.abs(0.5 * q * 7 * cols), "row " + r);
        }
        assertEquals(QuantBlocks.element(w, 0, 0), 0.5f * (float) q);
    }

    /**
     * A Q4_G128 matrix multiplies exactly as its Q4_0 twin (each 32-weight part a Q4_0 block with
     * the group's scale), bit for bit: one token and a few (8-bit activations, {@link QuantDot})
     * and a prefill (dequantized tiles). This is what lets a GPTQ Int4 checkpoint keep a scale per
     * 128 weights instead of per 32 without changing a single logit.
     */
    @org.junit.jupiter.api.Test
    void q4G128EqualsItsQ4_0TwinBitForBit() {
        int rows = 45;
        int cols = 640;
        Matrix g = KernelTestData.matrix(DType.Q4_G128, rows, cols, 11);
        MemorySegment twin = Arena.ofAuto().allocate(rows * DType.Q4_0.rowBytes(cols));
        for (long block = 0; block < (long) rows * cols / 128; block++) {
            for (int part = 0; part < 4; part++) {
                long to = (4 * block + part) * 18;
                twin.set(LE_SHORT, to, g.data().get(LE_SHORT, block * 66));
                MemorySegment.copy(g.data(), block * 66 + 2 + 16 * part, twin, to + 2, 16);
            }
        }
        Matrix q4 = new Matrix("twin", DType.Q4_0, rows, cols, twin);
        for (int tokens : new int[] {1, 3, 40}) {
            float[] x = KernelTestData.floats(tokens * cols, 2f, tokens);
            float[] expected = new float[tokens * rows];
            float[] actual = new float[tokens * rows];
            TWO.matmul(q4, x, tokens, expected);
            TWO.matmul(g, x, tokens, actual);
            org.junit.jupiter.api.Assertions.assertArrayEquals(expected, actual, tokens + " tokens");
        }
    }
}
