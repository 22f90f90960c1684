package qwen.service.backend.cpu;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import qwen.service.model.DType;

/**
 * The prefill matmul for long prompts ({@link #MIN_TOKENS} tokens and more): {@link PackedMatmul}'s
 * blocking and register tile (6 rows x 16 tokens, column blocks of {@link PackedMatmul#BLOCK_PAIRS}
 * pairs, even columns before odd ones), with each converted weight stored as a whole vector of
 * copies, and four panels (24 rows) per pass. The kernel then loads a weight with a plain vector
 * load instead of a broadcast: on a Zen 1 core a 256-bit broadcast also takes a slot of the FMA
 * pipes; in L1/L2 this kernel measured 36 GFLOP per CPU-second against 29 for the broadcasting
 * one (the FMA peak is about 40), and a whole 512-token matmul about 25% faster than
 * {@link PackedMatmul}. Expanding the weights costs a few percent of the FMAs only when every
 * converted block serves many token groups, hence the threshold.
 *
 * <p>Every (token, row) sum is formed as in {@link PackedMatmul}: one FMA chain per column block
 * from zero, added to the running total in block order, so the two give the same bits.
 */
final class BroadcastMatmul {

    private static final VectorSpecies<Float> F = PackedMatmul.F;
    private static final int L = F.length();
    private static final int PANEL = PackedMatmul.PANEL;
    private static final int PS = PackedMatmul.PANEL_STRIDE;
    /**
     * Panels per pass: they share each group of activations loaded into L1, so the activations
     * stream from L3 once per 24 rows; the pass's expanded weights (4 x 49 KiB per column block)
     * stay in a 512 KiB L2. Two panels measured 20% slower on a Zen 1 core, six no faster.
     */
    private static final int PANELS = 4;
    /** Rows per pass. */
    private static final int SUPER_ROWS = PANELS * PANEL;
    /** Floats of one panel position in the expanded layout: PANEL vectors. */
    private static final int POSITION = PANEL * L;
    /**
     * Fewest (padded) tokens for this path: with 128, expanding a block's weights costs about 3%
     * of the FMAs that use them; with fewer, {@link PackedMatmul}.
     */
    static final int MIN_TOKENS = 128;

    private BroadcastMatmul() {
    }

    /** Per-thread scratch floats that {@link #rows} needs for tp padded tokens. */
    static int scratchSize(int tp) {
        return SUPER_ROWS * PS + PANELS * PS * POSITION + SUPER_ROWS * accStride(tp);
    }

    /**
     * Floats between two rows' sums in the scratch: tp and one cache line more, so that the rows'
     * sums of one token (read together when the results are written token by token) fall in
     * different cache sets; at tp = 512 a stride of exactly 2 KiB put all 24 in two.
     */
    static int accStride(int tp) {
        return tp + 16;
    }

    /**
     * out[t * rows + r] = w[r, :] . x_t for rows [r0, r1) and all tokens, from xT as
     * {@link PackedMatmul#transpose} lays it out.
     */
    static void rows(DType type, MemorySegment w, int rows, int cols, float[] xT, int tokens, int tp,
                     float[] out, int r0, int r1, float[] scratch) {
        int pairs = cols / 2;
        int nb = PackedMatmul.blocks(cols);
        int wpOff = 0;
        int wvOff = SUPER_ROWS * PS;
        int accOff = wvOff + PANELS * PS * POSITION;
        int as = accStride(tp);
        for (int s0 = r0; s0 < r1; s0 += SUPER_ROWS) {
            int s1 = Math.min(r1, s0 + SUPER_ROWS);
            int panels = (s1 - s0 + PANEL - 1) / PANEL;
            Arrays.fill(scratch, accOff, accOff + SUPER_ROWS * as, 0f);
            for (int b = 0; b < nb; b++) {
                int p0 = b * PackedMatmul.BLOCK_PAIRS;
                int p1 = Math.min(pairs, p0 + PackedMatmul.BLOCK_PAIRS);
                boolean last = p1 == pairs;
                int n = 2 * (p1 - p0) + (last && cols % 2 != 0 ? 1 : 0);
                for (int q = 0; q < panels; q++) {
                    int r = s0 + q * PANEL;
                    int wp = wpOff + q * PANEL * PS;
                    PackedMatmul.convert(type, w, cols, r, Math.min(PANEL, s1 - r), p0, p1, last, scratch, wp);
                    expand(scratch, wp, n, scratch, wvOff + q * PS * POSITION);
                }
                int t = 0;
                for (; t + 2 * L <= tp; t += 2 * L) {
                    int x = t * cols + 2 * p0 * 2 * L;
                    for (int q = 0; q < panels; q++) {
                        kernel16(scratch, wvOff + q * PS * POSITION, xT, x, n, scratch, accOff + q * PANEL * as + t, as);
                    }
                }
                if (t < tp) {
                    int x = t * cols + 2 * p0 * L;
                    for (int q = 0; q < panels; q++) {
                        kernel8(scratch, wvOff + q * PS * POSITION, xT, x, n, scratch, accOff + q * PANEL * as + t, as);
                    }
                }
            }
            // Token by token: each token's rows are consecutive in out, while one row's tokens lie
            // rows * 4 bytes apart, a multiple of 4 KiB for most of the model's matrices, where
            // writing a row at a time kept evicting its own cache lines (8-10% of the matmul).
            for (int t = 0; t < tokens; t++) {
                int o = t * rows;
                for (int r = s0, a = accOff + t; r < s1; r++, a += as) {
                    out[o + r] = scratch[a];
                }
            }
        }
    }

    /** Panel rows wp[i * PS + m] to wv[m * POSITION + i * L ..], L copies each, for m < n. */
    private static void expand(float[] wp, int from, int n, float[] wv, int to) {
        for (int m = 0; m < n; m++) {
            int o = to + m * POSITION;
            for (int i = 0; i < PANEL; i++) {
                FloatVector.broadcast(F, wp[from + i * PS + m]).intoArray(wv, o + i * L);
            }
        }
    }

    /** Six panel rows x 16 tokens over n positions, added to acc[i * stride + 0..15]. */
    private static void kernel16(float[] wv, int wOff, float[] xT, int xOff, int n, float[] acc, int aOff, int stride) {
        FloatVector a00 = FloatVector.zero(F), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00;
        FloatVector a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
        for (int k = 0; k < n; k++) {
            int x = xOff + 2 * L * k;
            int w = wOff + POSITION * k;
            FloatVector x0 = FloatVector.fromArray(F, xT, x);
            FloatVector x1 = FloatVector.fromArray(F, xT, x + L);
            FloatVector b = FloatVector.fromArray(F, wv, w);
            a00 = x0.fma(b, a00);
            a01 = x1.fma(b, a01);
            b = FloatVector.fromArray(F, wv, w + L);
            a10 = x0.fma(b, a10);
            a11 = x1.fma(b, a11);
            b = FloatVector.fromArray(F, wv, w + 2 * L);
            a20 = x0.fma(b, a20);
            a21 = x1.fma(b, a21);
            b = FloatVector.fromArray(F, wv, w + 3 * L);
            a30 = x0.fma(b, a30);
            a31 = x1.fma(b, a31);
            b = FloatVector.fromArray(F, wv, w + 4 * L);
            a40 = x0.fma(b, a40);
            a41 = x1.fma(b, a41);
            b = FloatVector.fromArray(F, wv, w + 5 * L);
            a50 = x0.fma(b, a50);
            a51 = x1.fma(b, a51);
        }
        FloatVector.fromArray(F, acc, aOff).add(a00).intoArray(acc, aOff);
        FloatVector.fromArray(F, acc, aOff + L).add(a01).intoArray(acc, aOff + L);
        FloatVector.fromArray(F, acc, aOff + stride).add(a10).intoArray(acc, aOff + stride);
        FloatVector.fromArray(F, acc, aOff + stride + L).add(a11).intoArray(acc, aOff + stride + L);
        FloatVector.fromArray(F, acc, aOff + 2 * stride).add(a20).intoArray(acc, aOff + 2 * stride);
        FloatVector.fromArray(F, acc, aOff + 2 * stride + L).add(a21).intoArray(acc, aOff + 2 * stride + L);
        FloatVector.fromArray(F, acc, aOff + 3 * stride).add(a30).intoArray(acc, aOff + 3 * stride);
        FloatVector.fromArray(F, acc, aOff + 3 * stride + L).add(a31).intoArray(acc, aOff + 3 * stride + L);
        FloatVector.fromArray(F, acc, aOff + 4 * stride).add(a40).intoArray(acc, aOff + 4 * stride);
        FloatVector.fromArray(F, acc, aOff + 4 * stride + L).add(a41).intoArray(acc, aOff + 4 * stride + L);
        FloatVector.fromArray(F, acc, aOff + 5 * stride).add(a50).intoArray(acc, aOff + 5 * stride);
        FloatVector.fromArray(F, acc, aOff + 5 * stride + L).add(a51).intoArray(acc, aOff + 5 * stride + L);
    }

    /** Six panel rows x 8 tokens, for a last group of L tokens. */
    private static void kernel8(float[] wv, int wOff, float[] xT, int xOff, int n, float[] acc, int aOff, int stride) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
        for (int k = 0; k < n; k++) {
            int w = wOff + POSITION * k;
            FloatVector x0 = FloatVector.fromArray(F, xT, xOff + L * k);
            a0 = x0.fma(FloatVector.fromArray(F, wv, w), a0);
            a1 = x0.fma(FloatVector.fromArray(F, wv, w + L), a1);
            a2 = x0.fma(FloatVector.fromArray(F, wv, w + 2 * L), a2);
            a3 = x0.fma(FloatVector.fromArray(F, wv, w + 3 * L), a3);
            a4 = x0.fma(FloatVector.fromArray(F, wv, w + 4 * L), a4);
            a5 = x0.fma(FloatVector.fromArray(F, wv, w + 5 * L), a5);
        }
        FloatVector.fromArray(F, acc, aOff).add(a0).intoArray(acc, aOff);
        FloatVector.fromArray(F, acc, aOff + stride).add(a1).intoArray(acc, aOff + stride);
        FloatVector.fromArray(F, acc, aOff + 2 * stride).add(a2).intoArray(acc, aOff + 2 * stride);
        FloatVector.fromArray(F, acc, aOff + 3 * stride).add(a3).intoArray(acc, aOff + 3 * stride);
        FloatVector.fromArray(F, acc, aOff + 4 * stride).add(a4).intoArray(acc, aOff + 4 * stride);
        FloatVector.fromArray(F, acc, aOff + 5 * stride).add(a5).intoArray(acc, aOff + 5 * stride);
    }
}
