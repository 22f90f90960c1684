package qwen.service.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.fail;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import qwen.service.kv.KvPool;
import qwen.service.kv.LayerKv;
import qwen.service.kv.SequenceKv;
import qwen.service.model.DType;
import qwen.service.model.Matrix;

/**
 * Every {@link VectorKernels} operation but matmul (see {@link MatmulKernelsTest}) against
 * {@link ScalarKernels}, on widths that are not multiples of the vector length. Tolerances:
 * exact where both do the same f32 operations in the same order (embed, addBias, add, rope);
 * relative 1e-5 for rmsnorm (f32 against double sum of squares); 1e-6 relative plus 1e-7
 * absolute for siluMul (the vector exp may differ from Math.exp in its last bit); 2e-5 absolute
 * for attention with |v| <= 1 (an f32 convex combination of values, with f32 scores and
 * softmax against double ones).
 */
class VectorKernelsTest {

    private static final ScalarKernels REFERENCE = new ScalarKernels();
    private static final VectorKernels FAST = new VectorKernels(2);
    /** Rounds after which the attention kernels run compiled: about 400 from a cold start on 2 cores. */
    private static final int COMPILED_AFTER_ROUNDS = 1500;

    @AfterAll
    static void stopThreads() {
        FAST.close();
    }

    @ParameterizedTest(name = "{0} tokens of width {1}")
    @CsvSource({"1, 2048", "3, 61", "5, 7", "40, 2048"})
    void rmsnorm(int tokens, int n) {
        float[] x = KernelTestData.floats(tokens * n, 3f, n);
        float[] weight = KernelTestData.floats(n, 2f, n + 1);
        float[] expected = new float[tokens * n];
        REFERENCE.rmsnorm(x, tokens, weight, 1e-6f, expected);
        float[] inPlace = x.clone();
        FAST.rmsnorm(inPlace, tokens, weight, 1e-6f, inPlace);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], inPlace[i], 1e-5 * Math.abs(expected[i]) + 1e-30, "element " + i);
        }
    }

    @Test
    void embedIsExactForEveryDtype() {
        for (DType dtype : DType.values()) {
            if (dtype.quantized()) {
                continue;   // block types need whole 32-value blocks; their embedding is tested with the quantized kernels
            }
            Matrix wte = KernelTestData.matrix(dtype, 11, 37, dtype.ordinal());
            float[] expected = new float[40];
            float[] actual = new float[40];
            REFERENCE.embed(wte, 9, expected, 3);
            FAST.embed(wte, 9, actual, 3);
            assertArrayEquals(expected, actual, dtype.tag());
        }
        Matrix wte = KernelTestData.matrix(DType.BF16, 11, 37, 0);
        assertThrows(IllegalArgumentException.class, () -> FAST.embed(wte, 11, new float[37], 0));
    }

    @Test
    void addBiasAndAddAreExact() {
        float[] x = KernelTestData.floats(3 * 61, 1f, 1);
        float[] bias = KernelTestData.floats(61, 1f, 2);
        float[] expected = x.clone();
        float[] actual = x.clone();
        REFERENCE.addBias(expected, 3, bias);
        FAST.addBias(actual, 3, bias);
        assertArrayEquals(expected, actual);

        float[] y = KernelTestData.floats(3 * 61, 1f, 3);
        REFERENCE.add(expected, y, 3 * 61 - 2);
        FAST.add(actual, y, 3 * 61 - 2);
        assertArrayEquals(expected, actual);
    }

    @ParameterizedTest(name = "{0} tokens, {1} heads of {2}")
    @CsvSource({"1, 16, 128", "3, 3, 12", "40, 4, 128", "2, 2, 2"})
    void ropeIsExact(int tokens, int heads, int headDim) {
        int stride = 3 * heads * headDim + 5;
        int offset = heads * headDim + 2;
        float[] x = KernelTestData.floats(tokens * stride, 2f, heads);
        float[] cos = new float[tokens * headDim / 2];
        float[] sin = new float[tokens * headDim / 2];
        RopeTable.fill(10000, headDim, 17, tokens, cos, sin);
        float[] expected = x.clone();
        float[] actual = x.clone();
        REFERENCE.rope(expected, tokens, stride, offset, heads, headDim, cos, sin);
        FAST.rope(actual, tokens, stride, offset, heads, headDim, cos, sin);
        assertArrayEquals(expected, actual);
    }

    @ParameterizedTest(name = "n = {0}")
    @CsvSource({"5504", "61", "3", "88064"})
    void siluMul(int n) {
        float[] up = KernelTestData.floats(n + 3, 4f, n);
        float[] gate = KernelTestData.floats(n + 3, 12f, n + 1);
        float[] expected = up.clone();
        float[] actual = up.clone();
        REFERENCE.siluMul(expected, gate, n);
        FAST.siluMul(actual, gate, n);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], 1e-6 * Math.abs(expected[i]) + 1e-7, "element " + i);
        }
    }

    /**
     * Prefill from position 0, a chunk appended to a cache (startPos > 0, so causal masking is
     * relative to absolute positions), and decode steps, over several cache pages.
     */
    @ParameterizedTest(name = "startPos {0}, {1} tokens, {2} heads of {3}")
    @CsvSource({
        "0, 1, 2, 128", "0, 5, 3, 12", "0, 70, 2, 16", "70, 1, 16, 128", "100, 37, 3, 12",
        "200, 1, 2, 64", "129, 3, 1, 5", "63, 2, 2, 8", "60, 133, 2, 32"})
    void attention(int startPos, int tokens, int heads, int headDim) {
        int width = heads * headDim;
        int length = startPos + tokens;
        KvPool pool = new KvPool(width, 1L << 24);
        try (SequenceKv seq = pool.newSequence(1)) {
            LayerKv kv = seq.layer(0);
            KernelTestData.fillKv(kv, length, width, length);
            int rowOffset = 2;
            float[] q = KernelTestData.floats((rowOffset + tokens + 1) * width, 3f, headDim);
            float[] expected = new float[q.length];
            float[] actual = new float[q.length];
            REFERENCE.attention(q, expected, rowOffset, tokens, startPos, kv, heads, headDim);
            FAST.attention(q, actual, rowOffset, tokens, startPos, kv, heads, headDim);
            for (int i = 0; i < q.length; i++) {
                if (!(Math.abs(expected[i] - actual[i]) <= 2e-5)) {
                    fail("row " + i / width + " col " + i % width + ": expected " + expected[i] + ", got " + actual[i]);
                }
            }
        }
    }

    /**
     * A block of query rows shares each key and value load (four rows at a time), and a decode step
     * reads several heads' keys and values position by position, but every row's sums are formed as
     * for that row and head alone: a chunk gives the same bits as one-row calls, for head sizes whose
     * last dims fall outside the kernels' vectors (36, 44), for a prefill from position 0 over two
     * pages, and for more heads than threads (the decode step's units then hold several heads).
     * Both run compiled before they are compared: the interpreter adds a vector's lanes
     * (reduceLanes(ADD), whose order the API leaves open) and takes lanewise(EXP) otherwise than
     * compiled code, so while one path is compiled and the other not their last bits differ (for up
     * to about 400 rounds from a cold start here).
     */
    @ParameterizedTest(name = "head size {0}, from position {1}, {2} rows, {3} heads")
    @CsvSource({"36, 110, 19, 2", "44, 60, 23, 5", "128, 0, 70, 2", "128, 70, 9, 16"})
    void attentionOfABlockEqualsEachRowAloneBitForBit(int headDim, int startPos, int tokens, int heads) {
        int width = heads * headDim;
        int length = startPos + tokens;
        KvPool pool = new KvPool(width, 1L << 24);
        try (SequenceKv seq = pool.newSequence(1)) {
            LayerKv kv = seq.layer(0);
            KernelTestData.fillKv(kv, length, width, 5);
            float[] q = KernelTestData.floats(tokens * width, 3f, 7);
            float[] together = new float[q.length];
            float[] alone = new float[q.length];
            for (int round = 0; round < COMPILED_AFTER_ROUNDS; round++) {
                FAST.attention(q, together, 0, tokens, startPos, kv, heads, headDim);
                for (int t = 0; t < tokens; t++) {
                    FAST.attention(q, alone, t, 1, startPos + t, kv, heads, headDim);
                }
            }
            org.junit.jupiter.api.Assertions.assertArrayEquals(alone, together);
        }
    }

    @Test
    void attentionRejectsPositionsNotInTheCache() {
        KvPool pool = new KvPool(8, 1L << 20);
        try (SequenceKv seq = pool.newSequence(1)) {
            LayerKv kv = seq.layer(0);
            kv.put(0, new float[8], 0, new float[8], 0);
            assertThrows(IllegalArgumentException.class,
                    () -> FAST.attention(new float[16], new float[16], 0, 2, 0, kv, 1, 8));
        }
    }
}
