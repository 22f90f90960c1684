package qwen.service.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import qwen.service.model.DType;
import qwen.service.model.LayerRange;
import qwen.service.model.LayerWeights;
import qwen.service.model.Matrix;
import qwen.service.model.QuantBlocks;
import qwen.service.model.QwenConfig;
import qwen.service.model.RowGroups;
import qwen.service.model.ShardWeights;

/**
 * Q4_0 and Q8_0 matrices re-laid in groups of 16 rows ({@link RowGroups}, {@link DType#Q4_0_R16},
 * {@link DType#Q8_0_R16}) and the kernels that multiply them ({@link GroupDot}): the re-laying keeps
 * every element, one token and a few follow the scalar reference on the same 8-bit activations
 * within {@link QuantDotCheck}'s bound, the extreme quants do not overflow the 16-bit sums, and
 * prefill (dequantized tiles) gives the source's floats bit for bit.
 */
class GroupDotTest {

    private static final ValueLayout.OfShort LE_SHORT =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final VectorKernels TWO = new VectorKernels(2);

    @AfterAll
    static void stopThreads() {
        TWO.close();
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q4_0", "Q8_0"})
    void reLayingKeepsEveryScaleAndQuant(DType source) {
        Matrix m = KernelTestData.matrix(source, 48, 160, 3);
        Matrix r16 = RowGroups.of(m, Arena.ofAuto());
        assertEquals(source == DType.Q4_0 ? DType.Q4_0_R16 : DType.Q8_0_R16, r16.dtype());
        assertEquals(m.byteSize() / source.blockBytes() * (source.blockBytes() + 2), r16.byteSize(),
                "per row and block: an f32 scale where the source has an f16 one, then the same quants");
        for (int r = 0; r < m.rows(); r++) {
            for (int c = 0; c < m.cols(); c++) {
                assertEquals(QuantBlocks.quant(m, r, c), QuantBlocks.quant(r16, r, c), "quant [" + r + ", " + c + "]");
                assertEquals(QuantBlocks.scale(m, r, c), QuantBlocks.scale(r16, r, c), "scale [" + r + ", " + c + "]");
                assertEquals(QuantBlocks.element(m, r, c), QuantBlocks.element(r16, r, c));
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q4_0_R16", "Q8_0_R16"})
    void matchesScalarReference(DType type) {
        int[][] shapes = {{16, 32}, {32, 64}, {48, 160}, {64, 2048}, {16, 5504 / 4}, {144, 96}};
        for (int[] s : shapes) {
            for (int tokens : new int[] {1, 2, 5}) {
                long seed = 31L * s[0] + s[1] + tokens;
                QuantDotCheck.check(TWO, KernelTestData.matrix(type, s[0], s[1], seed), KernelTestData.floats(tokens * s[1], 3f, seed + 1), tokens);
            }
        }
    }

    /**
     * The largest sums the 16-bit lanes hold: every low nibble 15 and every high nibble 0 (-8),
     * against activations at +max in a block's first half and -max in its second, so each block's
     * low-nibble sum reaches 16 * 15 * 127 and its high-nibble sum 16 * 8 * 127.
     */
    @Test
    void extremeQuantsDoNotOverflow() {
        int rows = 32;
        int cols = 256;
        MemorySegment data = Arena.ofAuto().allocate(rows * DType.Q4_0.rowBytes(cols));
        for (long at = 0; at < data.byteSize(); at += 18) {
            data.set(LE_SHORT, at, Float.floatToFloat16(0.5f));
            for (int i = 2; i < 18; i++) {
                data.set(ValueLayout.JAVA_BYTE, at + i, (byte) 0x0F);
            }
        }
        Matrix w = RowGroups.of(new Matrix("extreme", DType.Q4_0, rows, cols, data), Arena.ofAuto());
        float[] x = new float[cols];
        for (int i = 0; i < cols; i++) {
            x[i] = i % 32 < 16 ? 5f : -5f;
        }
        float[] out = new float[rows];
        TWO.matmul(w, x, 1, out);
        double expected = 0;
        for (int i = 0; i < cols; i++) {
            expected += 0.5 * (i % 32 < 16 ? 7 : -8) * x[i];
        }
        for (int r = 0; r < rows; r++) {
            assertEquals(expected, out[r], 1e-5 * Math.abs(expected), "row " + r);
        }
    }

    /**
     * The largest sums a Q8_0_R16 column pair holds in a 16-bit lane: every quant -128 against
     * activations at -max and at +max (quant -127, 127), so each pair of products reaches +32512 and
     * -32512, the ends of what the biased low halves must hold; and rows that differ, so a lane
     * mixed up with another shows.
     */
    @Test
    void extremeQ8QuantsDoNotOverflow() {
        int rows = 32;
        int cols = 256;
        MemorySegment data = Arena.ofAuto().allocate(rows * DType.Q8_0.rowBytes(cols));
        for (int r = 0; r < rows; r++) {
            for (int b = 0; b < cols / 32; b++) {
                long at = r * DType.Q8_0.rowBytes(cols) + 34L * b;
                data.set(LE_SHORT, at, Float.floatToFloat16(0.25f * (r + 1)));
                for (int i = 2; i < 34; i++) {
                    data.set(ValueLayout.JAVA_BYTE, at + i, (byte) -128);
                }
            }
        }
        Matrix w = RowGroups.of(new Matrix("extreme", DType.Q8_0, rows, cols, data), Arena.ofAuto());
        for (float v : new float[] {-5f, 5f}) {
            float[] x = new float[cols];
            java.util.Arrays.fill(x, v);
            float[] out = new float[rows];
            TWO.matmul(w, x, 1, out);
            for (int r = 0; r < rows; r++) {
                double expected = 0.25 * (r + 1) * -128 * v * cols;
                assertEquals(expected, out[r], 1e-5 * Math.abs(expected), "row " + r + ", activations " + v);
            }
        }
    }

    /**
     * Prefill dequantizes panels ({@link GroupDot#pairs}) to the same floats as the Q4_0 / Q8_0 source,
     * so a prompt of 40 tokens (packed path) or 130 (broadcast path) gives the source's output exactly.
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q4_0", "Q8_0"})
    void prefillEqualsTheSourceBitForBit(DType source) {
        Matrix m = KernelTestData.matrix(source, 64, 320, 5);
        Matrix r16 = RowGroups.of(m, Arena.ofAuto());
        for (int tokens : new int[] {40, 130}) {
            float[] x = KernelTestData.floats(tokens * 320, 2f, tokens);
            float[] expected = new float[tokens * 64];
            float[] actual = new float[tokens * 64];
            TWO.matmul(m, x, tokens, expected);
            TWO.matmul(r16, x, tokens, actual);
            assertArrayEquals(expected, actual, tokens + " tokens");
        }
    }

    /**
     * Only Q4_0 and Q8_0 matrices in whole groups of rows are re-laid, and only those the kernels
     * multiply: the embedding (looked up a row at a time), a 40-row matrix and a Q5_0 one stay as
     * they are.
     */
    @Test
    void reLaysOnlyWholeGroupsOfTheMultipliedMatrices() {
        Matrix cAttn = KernelTestData.matrix(DType.Q4_0, 96, 32, 1);
        Matrix odd = KernelTestData.matrix(DType.Q4_0, 40, 32, 2);
        Matrix proj = KernelTestData.matrix(DType.Q4_0, 32, 32, 3);
        Matrix w1 = KernelTestData.matrix(DType.Q8_0, 64, 32, 4);
        Matrix q5 = KernelTestData.matrix(DType.Q5_0, 64, 32, 6);
        Matrix wte = KernelTestData.matrix(DType.Q4_0, 64, 32, 5);
        QwenConfig cfg = new QwenConfig(32, 1, 2, 16, 64, 64, 32, 10000, 1e-6f, true, true);
        LayerWeights layer = new LayerWeights(0, new float[32], cAttn, new float[96], proj, new float[32], w1, q5, odd);
        boolean[] closed = {false};
        ShardWeights w = new ShardWeights(cfg, LayerRange.whole(1), wte, List.of(layer), new float[32], odd, () -> closed[0] = true);
        ShardWeights r = RowGroups.apply(w);
        LayerWeights l = r.layers().getFirst();
        assertEquals(DType.Q4_0_R16, l.cAttn().dtype());
        assertEquals(DType.Q4_0_R16, l.attnCProj().dtype());
        assertEquals(DType.Q8_0_R16, l.w1().dtype());
        assertSame(q5, l.w2());
        assertSame(odd, l.mlpCProj());
        assertSame(odd, r.lmHead());
        assertSame(wte, r.wte());
        assertFalse(RowGroups.applies(odd));
        assertThrows(IllegalArgumentException.class, () -> RowGroups.of(odd, Arena.ofAuto()));
        assertThrows(IllegalArgumentException.class,
                () -> new Matrix("short", DType.Q4_0_R16, 8, 32, Arena.ofAuto().allocate(8 * 20)));
        assertDoesNotThrowOnClose(r);
        assertTrue(closed[0], "closing the re-laid weights closes their source");
        ShardWeights none = new ShardWeights(cfg, LayerRange.whole(1), wte,
                List.of(new LayerWeights(0, new float[32], q5, new float[96], q5, new float[32], q5, q5, q5)), null, null, () -> { });
        assertSame(none, RowGroups.apply(none), "nothing to re-lay: the same weights");
    }

    private static void assertDoesNotThrowOnClose(ShardWeights w) {
        try {
            w.close();
        } catch (Exception e) {
            throw new AssertionError("closing the re-laid weights failed", e);
        }
    }
}
