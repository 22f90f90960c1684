package qwen.service.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import qwen.service.model.DType;
import qwen.service.model.Matrix;

/**
 * {@link VectorKernels#matmul} against {@link ScalarKernels#matmul} for every dtype, on shapes
 * that are not multiples of the vector width, the four-row blocks, the column tiles (cols >
 * 1024) or the thread split, with tokens = 1 (decode), odd and even counts, and more tokens than
 * one token tile (40 > 32 at cols = 2048).
 *
 * <p>Tolerance: |fast - reference| <= 1e-5 * sum_i |w_i x_i| per output. The reference sums in
 * double, so the difference is the fast kernel's f32 rounding: the products are exact in f32
 * (FMA) or rounded once, and each partial sum takes about cols / lanes + log2(lanes) additions,
 * which for random signs gives ~ sqrt(cols / 8) * 2^-24 ~ 1e-6 of sum |w x| at cols = 2048.
 * A wrong, dropped or doubled term moves the result by about 1 / cols of that scale (5e-4 at
 * 2048), far outside the bound.
 *
 * <p>Q8_0 and Q4_0 below {@link VectorMatmul#PACKED_MIN_TOKENS} tokens multiply 8-bit quantized
 * activations ({@link Q8Activations}): there the bound adds the exact worst case of that
 * rounding, sum over blocks of (max|x| / 254) * sum |w|, as each value moves by at most half a
 * step of its block ({@link QuantDotTest} holds the kernel itself to its scalar reference).
 */
class MatmulKernelsTest {

    private static final double TOLERANCE = 1e-5;
    private static final ScalarKernels REFERENCE = new ScalarKernels();
    private static final VectorKernels TWO = new VectorKernels(2);
    private static final VectorKernels THREE = new VectorKernels(3);

    @AfterAll
    static void stopThreads() {
        TWO.close();
        THREE.close();
    }

    static Stream<Arguments> shapes() {
        int[][] shapes = {{37, 61}, {5, 130}, {3, 8}, {1, 1}, {64, 2048}, {9, 2101}, {130, 17}, {4, 2}, {7, 1}};
        List<Arguments> cases = new ArrayList<>();
        for (DType dtype : DType.values()) {
            for (int[] s : shapes) {
                for (int tokens : new int[] {1, 2, 3, 8}) {
                    cases.add(Arguments.of(dtype, s[0], KernelTestData.cols(dtype, s[1]), tokens));
                }
            }
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0} [{1}, {2}] x {3} tokens")
    @MethodSource("shapes")
    void matchesReference(DType dtype, int rows, int cols, int tokens) {
        check(TWO, dtype, rows, cols, tokens);
    }

    @Test
    void threeThreadsSplitUnevenly() {
        for (DType dtype : DType.values()) {
            check(THREE, dtype, 37, KernelTestData.cols(dtype, 61), 1);
            check(THREE, dtype, 37, KernelTestData.cols(dtype, 61), 5);
            check(THREE, dtype, 2, KernelTestData.cols(dtype, 300), 3);
        }
    }

    @Test
    void moreTokensThanOneTokenTile() {
        for (DType dtype : DType.values()) {
            check(TWO, dtype, 13, 2048, 40);
            check(TWO, dtype, 13, 2048, 20);
        }
    }

    /**
     * The packed prefill path (BF16, F16 and the block-quantized types): token counts around the 16- and 8-token
     * groups and the 64-token tile, rows not a multiple of the six-row panel, cols odd, below a
     * vector, across the 256-column blocks and with a short last block (block-quantized types:
     * cols rounded up to whole blocks).
     */
    @ParameterizedTest(name = "{0}")
    @org.junit.jupiter.params.provider.EnumSource(value = DType.class, names = {"BF16", "F16", "Q8_0", "Q4_0", "Q5_0", "Q4_1", "Q5_1", "Q4_K", "Q5_K", "Q6_K", "Q4_0_R16", "Q8_0_R16"})
    void packedPrefill(DType dtype) {
        int[][] shapes = {{37, 61}, {13, 2048}, {9, 2101}, {1, 1}, {50, 7}, {7, 300}, {16, 514}};
        for (int[] s : shapes) {
            for (int tokens : new int[] {VectorMatmul.PACKED_MIN_TOKENS, 33, 47, 72}) {
                check(TWO, dtype, s[0], KernelTestData.cols(dtype, s[1]), tokens);
            }
        }
        check(THREE, dtype, 97, KernelTestData.cols(dtype, 130), 57);
        try (VectorKernels one = new VectorKernels(1)) {
            check(one, dtype, 37, KernelTestData.cols(dtype, 61), 40);
        }
    }

    /**
     * The long-prompt path with the weights stored as vectors ({@link BroadcastMatmul}): token
     * counts from its threshold, with a last group of 8 tokens and padding, the same shapes.
     */
    @ParameterizedTest(name = "{0}")
    @org.junit.jupiter.params.provider.EnumSource(value = DType.class, names = {"BF16", "F16", "Q8_0", "Q4_0", "Q5_0", "Q4_1", "Q5_1", "Q4_K", "Q5_K", "Q6_K", "Q4_0_R16", "Q8_0_R16"})
    void broadcastPrefill(DType dtype) {
        int[][] shapes = {{37, 61}, {13, 2048}, {9, 2101}, {1, 1}, {16, 514}};
        for (int[] s : shapes) {
            for (int tokens : new int[] {BroadcastMatmul.MIN_TOKENS, 131, 150}) {
                check(TWO, dtype, s[0], KernelTestData.cols(dtype, s[1]), tokens);
            }
        }
        check(THREE, dtype, 97, KernelTestData.cols(dtype, 130), 137);
    }

    /**
     * A token's packed-path result does not depend on the other tokens of the call, nor on which
     * of the two prefill paths computed it: the same bits from 32 tokens ({@link PackedMatmul}) as
     * from 72 and from 160 (the latter through {@link BroadcastMatmul}).
     */
    @ParameterizedTest(name = "{0} tokens")
    @org.junit.jupiter.params.provider.ValueSource(ints = {72, 160})
    void packedBf16TokenIndependentOfBatch(int big) {
        int rows = 45;
        int cols = 600;
        Matrix w = KernelTestData.matrix(DType.BF16, rows, cols, 5);
        float[] x = KernelTestData.floats(big * cols, 1f, 6);
        float[] all = new float[big * rows];
        TWO.matmul(w, x, big, all);
        int small = VectorMatmul.PACKED_MIN_TOKENS;
        for (int from : new int[] {0, 17, big - small}) {
            float[] part = new float[small * rows];
            TWO.matmul(w, java.util.Arrays.copyOfRange(x, from * cols, (from + small) * cols), small, part);
            for (int t = 0; t < small; t++) {
                for (int r = 0; r < rows; r++) {
                    assertEquals(Float.floatToRawIntBits(all[(from + t) * rows + r]),
                            Float.floatToRawIntBits(part[t * rows + r]), "token " + (from + t) + " row " + r);
                }
            }
        }
    }

    @Test
    void oneThreadRunsOnTheCaller() {
        try (VectorKernels one = new VectorKernels(1)) {
            check(one, DType.BF16, 37, 61, 3);
            check(one, DType.F16, 37, 61, 3);
        }
    }

    /** requestedRows rounded up to whole row groups for the row-grouped types ({@link KernelTestData#rows}). */
    private static void check(VectorKernels fast, DType dtype, int requestedRows, int cols, int tokens) {
        int rows = KernelTestData.rows(dtype, requestedRows);
        long seed = 31L * rows + 7L * cols + tokens + dtype.ordinal();
        Matrix w = KernelTestData.matrix(dtype, rows, cols, seed);
        float[] x = KernelTestData.floats(tokens * cols, 1f, seed + 1);
        float[] expected = new float[tokens * rows];
        float[] actual = KernelTestData.floats(tokens * rows + 5, 9f, seed + 2);   // stale garbage
        float[] guard = actual.clone();
        REFERENCE.matmul(w, x, tokens, expected);
        fast.matmul(w, x, tokens, actual);
        for (int t = 0; t < tokens; t++) {
            for (int r = 0; r < rows; r++) {
                double bound = TOLERANCE * KernelTestData.absDot(w, x, t, r) + 1e-30;
                if (dtype.quantized() && tokens < VectorMatmul.PACKED_MIN_TOKENS) {
                    bound += KernelTestData.activationRounding(w, x, t, r);
                }
                float e = expected[t * rows + r];
                float a = actual[t * rows + r];
                if (!(Math.abs(a - e) <= bound)) {
                    fail(w.name() + " token " + t + " row " + r + ": expected " + e + ", got " + a
                            + " (bound " + bound + ")");
                }
            }
        }
        for (int i = tokens * rows; i < actual.length; i++) {
            assertEquals(guard[i], actual[i], "wrote past out[tokens * rows)");
        }
    }

    /** The f16 pair decoders of the F16 decode path (times 2^112), against Float.float16ToFloat for all finite encodings. */
    @Test
    void f16PairDecodeIsExactForEveryFiniteEncoding() {
        var ints = FloatVector.SPECIES_PREFERRED.withLanes(int.class);
        int lanes = ints.length();
        int[] pairs = new int[lanes];
        float[] even = new float[lanes];
        float[] odd = new float[lanes];
        for (int base = 0; base < 65536; base += lanes) {
            for (int k = 0; k < lanes; k++) {
                int lo = base + k;
                int hi = (lo * 40503 + 12345) & 0xFFFF;   // another encoding in the high half
                pairs[k] = hi << 16 | lo;
            }
            IntVector v = IntVector.fromArray(ints, pairs, 0);
            F16Dot.even(v).intoArray(even, 0);
            F16Dot.odd(v).intoArray(odd, 0);
            for (int k = 0; k < lanes; k++) {
                check(pairs[k] & 0xFFFF, even[k]);
                check(pairs[k] >>> 16, odd[k]);
            }
        }
    }

    private static void check(int bits, float scaled) {
        float want = Float.float16ToFloat((short) bits);
        float decoded = scaled * 0x1p112f;   // exact: the decoders return the value times 2^-112
        if (Float.isFinite(want)) {
            assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(decoded), "f16 " + Integer.toHexString(bits));
        }
    }

    /** The f16 decoder of the F16 path, against Float.float16ToFloat for all 65536 encodings. */
    @Test
    void f16DecodeIsExactForEveryEncoding() {
        int lanes = FloatVector.SPECIES_PREFERRED.length();
        int[] bits = new int[lanes];
        float[] decoded = new float[lanes];
        for (int base = 0; base < 65536; base += lanes) {
            for (int k = 0; k < lanes; k++) {
                bits[k] = base + k;
            }
            TileDot.f16ToF32(IntVector.fromArray(FloatVector.SPECIES_PREFERRED.withLanes(int.class), bits, 0))
                    .intoArray(decoded, 0);
            for (int k = 0; k < lanes; k++) {
                float want = Float.float16ToFloat((short) bits[k]);
                if (Float.isNaN(want)) {
                    assertTrue(Float.isNaN(decoded[k]), "f16 " + Integer.toHexString(bits[k]));
                } else {
                    assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(decoded[k]),
                            "f16 " + Integer.toHexString(bits[k]));
                }
            }
        }
    }
}
