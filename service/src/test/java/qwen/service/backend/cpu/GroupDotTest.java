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
import qwen.service.model.DType;
import qwen.service.model.LayerRange;
import qwen.service.model.LayerWeights;
import qwen.service.model.Matrix;
import qwen.service.model.QuantBlocks;
import qwen.service.model.QwenConfig;
import qwen.service.model.RowGroups;
import qwen.service.model.ShardWeights;

/**
 * Q4_0 matrices re-laid in groups of 16 rows ({@link RowGroups}, {@link DType#Q4_0_R16}) and the
 * kernel that multiplies them ({@link GroupDot}): the re-laying keeps every element, one token
 * and a few follow the scalar reference on the same 8-bit activations within {@link QuantDotCheck}'s
 * bound, the extreme quants do not overflow the 16-bit sums, and prefill (dequantized tiles) gives
 * the Q4_0 source's floats bit for bit.
 */
class GroupDotTest {

    private static final ValueLayout.OfShort LE_SHORT =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final VectorKernels TWO = new VectorKernels(2);

    @AfterAll
    static void stopThreads() {
        TWO.close();
    }

    @Test
    void reLayingKeepsEveryScaleAndQuant() {
        Matrix q4 = KernelTestData.matrix(DType.Q4_0, 48, 160, 3);
        Matrix r16 = RowGroups.of(q4, Arena.ofAuto());
        assertEquals(DType.Q4_0_R16, r16.dtype());
        assertEquals(q4.byteSize() / 18 * 20, r16.byteSize(), "20 bytes per row and block: an f32 scale and 16 of nibbles");
        for (int r = 0; r < q4.rows(); r++) {
            for (int c = 0; c < q4.cols(); c++) {
                assertEquals(QuantBlocks.quant(q4, r, c), QuantBlocks.quant(r16, r, c), "quant [" + r + ", " + c + "]");
                assertEquals(QuantBlocks.scale(q4, r, c), QuantBlocks.scale(r16, r, c), "scale [" + r + ", " + c + "]");
                assertEquals(QuantBlocks.element(q4, r, c), QuantBlocks.element(r16, r, c));
            }
        }
    }

    @Test
    void matchesScalarReference() {
        int[][] shapes = {{16, 32}, {32, 64}, {48, 160}, {64, 2048}, {16, 5504 / 4}, {144, 96}};
        for (int[] s : shapes) {
            for (int tokens : new int[] {1, 2, 5}) {
                long seed = 31L * s[0] + s[1] + tokens;
                QuantDotCheck.check(TWO, KernelTestData.matrix(DType.Q4_0_R16, s[0], s[1], seed), KernelTestData.floats(tokens * s[1], 3f, seed + 1), tokens);
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
     * Prefill dequantizes panels ({@link GroupDot#pairs}) to the same floats as the Q4_0 source, so a
     * prompt of 40 tokens (packed path) or 130 (broadcast path) gives the source's output exactly.
     */
    @Test
    void prefillEqualsTheQ4_0SourceBitForBit() {
        Matrix q4 = KernelTestData.matrix(DType.Q4_0, 64, 320, 5);
        Matrix r16 = RowGroups.of(q4, Arena.ofAuto());
        for (int tokens : new int[] {40, 130}) {
            float[] x = KernelTestData.floats(tokens * 320, 2f, tokens);
            float[] expected = new float[tokens * 64];
            float[] actual = new float[tokens * 64];
            TWO.matmul(q4, x, tokens, expected);
            TWO.matmul(r16, x, tokens, actual);
            assertArrayEquals(expected, actual, tokens + " tokens");
        }
    }

    /**
     * Only Q4_0 matrices in whole groups of rows are re-laid, and only those the kernels multiply:
     * the embedding (looked up a row at a time) and a 40-row matrix stay as they are.
     */
    @Test
    void reLaysOnlyWholeGroupsOfTheMultipliedMatrices() {
        Matrix cAttn = KernelTestData.matrix(DType.Q4_0, 96, 32, 1);
        Matrix odd = KernelTestData.matrix(DType.Q4_0, 40, 32, 2);
        Matrix proj = KernelTestData.matrix(DType.Q4_0, 32, 32, 3);
        Matrix w1 = KernelTestData.matrix(DType.Q8_0, 64, 32, 4);
        Matrix wte = KernelTestData.matrix(DType.Q4_0, 64, 32, 5);
        QwenConfig cfg = new QwenConfig(32, 1, 2, 16, 64, 64, 32, 10000, 1e-6f, true, true);
        LayerWeights layer = new LayerWeights(0, new float[32], cAttn, new float[96], proj, new float[32], w1, w1, odd);
        boolean[] closed = {false};
        ShardWeights w = new ShardWeights(cfg, LayerRange.whole(1), wte, List.of(layer), new float[32], odd, () -> closed[0] = true);
        ShardWeights r = RowGroups.apply(w);
        LayerWeights l = r.layers().getFirst();
        assertEquals(DType.Q4_0_R16, l.cAttn().dtype());
        assertEquals(DType.Q4_0_R16, l.attnCProj().dtype());
        assertSame(w1, l.w1());
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
                List.of(new LayerWeights(0, new float[32], w1, new float[96], w1, new float[32], w1, w1, w1)), null, null, () -> { });
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
