package qwen.service.backend.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorSpecies;
import qwen.service.model.DType;

/**
 * The prefill matmul for every weight type but F32, blocked like GotoBLAS: the activations are transposed once per call
 * to xT[position][token] (tokens padded to a multiple of the vector length with zeros), and each
 * thread converts panels of {@link #PANEL} weight rows by {@link #BLOCK_PAIRS} column pairs
 * (BF16, F16, or Q8_0 / Q4_0 blocks, dequantized) to f32 once for all tokens, then multiplies them by groups of 16 tokens in a register tile of
 * 6 rows x 2 token vectors: per column, two activation loads and six weight broadcasts feed
 * twelve FMAs, and no bf16 unpacking is repeated per token.
 *
 * <p>Columns are visited in blocks of {@link #BLOCK_PAIRS} pairs; within a block, the even
 * columns come first and then the odd ones (and, in the last block of an odd-width matrix, the
 * last column). Each (token, row) sum is one FMA chain per block, started from zero and added to
 * the running total, so its value does not depend on the other tokens in the call.
 */
final class PackedMatmul {

    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> I = F.withLanes(int.class);
    private static final int L = F.length();
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfShort LE_SHORT =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);
    private static final int HIGH = 0xFFFF0000;

    /** Rows per register tile. */
    static final int PANEL = 6;
    /** Column pairs per block: 256 columns, 6 KiB of f32 weights per panel. */
    static final int BLOCK_PAIRS = 128;
    /** Stride of a panel row in the converted weights (room for the odd last column). */
    static final int PANEL_STRIDE = 2 * BLOCK_PAIRS + L;
    /** Rows converted at a time: 96 KiB of f32 at cols = 2048, in L2. */
    static final int SUPER_ROWS = 2 * PANEL;
    /** Tokens per tile: 64 tokens x 256 columns of activations are 64 KiB, in L2. */
    static final int TOKEN_TILE = 64;

    private PackedMatmul() {
    }

    /** Tokens rounded up to the vector length: the token stride of {@link #transpose}. */
    static int paddedTokens(int tokens) {
        return (tokens + L - 1) / L * L;
    }

    /** Column blocks of a matrix with cols columns. */
    static int blocks(int cols) {
        return Math.max(1, (cols / 2 + BLOCK_PAIRS - 1) / BLOCK_PAIRS);
    }

    /** Per-thread scratch floats that {@link #rows} needs. */
    static int scratchSize(int cols) {
        return SUPER_ROWS * TOKEN_TILE + SUPER_ROWS * blocks(cols) * PANEL_STRIDE;
    }

    /** Groups of 2 * L tokens that {@link #transpose} writes for tp padded tokens. */
    static int groups(int tp) {
        return (tp + 2 * L - 1) / (2 * L);
    }

    /**
     * x[t * cols + c] into xT in groups of 2 * L tokens (the last group L if tp is an odd
     * multiple of L): group g0 (its first token) at xT[g0 * cols], position-major with the
     * group's width as stride, so a kernel reads consecutive memory. Padding tokens are zero. Only
     * groups [first, end) are written: the groups are independent, and threads split them.
     */
    static void transpose(float[] x, int tokens, int cols, float[] xT, int tp, int first, int end) {
        int pairs = cols / 2;
        for (int g0 = 2 * L * first; g0 < Math.min(tp, 2 * L * end); g0 += 2 * L) {
            int width = Math.min(2 * L, tp - g0);
            int go = g0 * cols;
            int p0 = 0;
            do {
                int np = Math.min(pairs, p0 + BLOCK_PAIRS) - p0;
                int base = 2 * p0;
                for (int u = 0; u < width; u++) {
                    int t = g0 + u;
                    if (t >= tokens) {
                        for (int m = 0; m < 2 * np; m++) {
                            xT[go + (base + m) * width + u] = 0;
                        }
                        continue;
                    }
                    int xb = t * cols + base;
                    for (int m = 0; m < np; m++) {
                        xT[go + (base + m) * width + u] = x[xb + 2 * m];
                        xT[go + (base + np + m) * width + u] = x[xb + 2 * m + 1];
                    }
                }
                p0 += np;
            } while (p0 < pairs);
            if (cols % 2 != 0) {
                for (int u = 0; u < width; u++) {
                    int t = g0 + u;
                    xT[go + (cols - 1) * width + u] = t < tokens ? x[t * cols + cols - 1] : 0;
                }
            }
        }
    }

    /**
     * out[t * rows + r] = w[r, :] . x_t for rows [r0, r1) and all tokens, from xT. The weights of
     * {@link #SUPER_ROWS} rows are converted first, row by row in memory order, to
     * wp[((panel * blocks + block) * PANEL + row) * PANEL_STRIDE + position] (in L2), then
     * multiplied by each token tile, the partial sums of the tile kept in acc (in L1).
     */
    static void rows(DType type, MemorySegment w, int rows, int cols, float[] xT, int tokens, int tp,
                     float[] out, int r0, int r1, float[] scratch) {
        int pairs = cols / 2;
        int nb = blocks(cols);
        int accOff = 0;
        int wpOff = SUPER_ROWS * TOKEN_TILE;
        int panelSize = PANEL * PANEL_STRIDE;
        long rowBytes = type.rowBytes(cols);
        int groups = (tp + 2 * L - 1) / (2 * L);
        int calls = nb * (SUPER_ROWS / PANEL) * groups;
        long step = Math.max(64, (SUPER_ROWS * rowBytes / calls + 63) & ~63L);
        for (int s0 = r0; s0 < r1; s0 += SUPER_ROWS) {
            int s1 = Math.min(r1, s0 + SUPER_ROWS);
            // Reads the next block's weights a slice per kernel, so that they stream into L2
            // while this block computes.
            long pf = s1 * rowBytes;
            long pfEnd = Math.min(r1, s1 + SUPER_ROWS) * rowBytes;
            for (int r = s0; r < s1; r += PANEL) {
                int nr = Math.min(PANEL, s1 - r);
                int o = wpOff + (r - s0) / PANEL * nb * panelSize;
                for (int b = 0; b < nb; b++) {
                    int p0 = b * BLOCK_PAIRS;
                    int p1 = Math.min(pairs, p0 + BLOCK_PAIRS);
                    convert(type, w, cols, r, nr, p0, p1, p1 == pairs, scratch, o + b * panelSize);
                }
            }
            for (int t0 = 0; t0 < tp; t0 += TOKEN_TILE) {
                int t1 = Math.min(tp, t0 + TOKEN_TILE);
                java.util.Arrays.fill(scratch, accOff, accOff + SUPER_ROWS * TOKEN_TILE, 0f);
                for (int b = 0; b < nb; b++) {
                    int p0 = b * BLOCK_PAIRS;
                    int p1 = Math.min(pairs, p0 + BLOCK_PAIRS);
                    int n = 2 * (p1 - p0) + (p1 == pairs && cols % 2 != 0 ? 1 : 0);
                    for (int r = s0; r < s1; r += PANEL) {
                        int wo = wpOff + ((r - s0) / PANEL * nb + b) * panelSize;
                        int acc = accOff + (r - s0) * TOKEN_TILE;
                        int t = t0;
                        for (; t + 2 * L <= t1; t += 2 * L) {
                            kernel16(scratch, wo, xT, t * cols + 2 * p0 * 2 * L, n, scratch, acc + t - t0);
                            pf = touch(w, pf, Math.min(pfEnd, pf + step));
                        }
                        if (t < t1) {
                            kernel8(scratch, wo, xT, t * cols + 2 * p0 * L, n, scratch, acc + t - t0);
                            pf = touch(w, pf, Math.min(pfEnd, pf + step));
                        }
                    }
                }
                // Token by token, as BroadcastMatmul writes: one row's tokens lie rows * 4 bytes apart,
                // often a multiple of 4 KiB, and a row at a time evicted its own cache lines.
                int tEnd = Math.min(tokens, t1);
                for (int t = t0; t < tEnd; t++) {
                    int o = t * rows;
                    for (int r = s0, a = accOff + t - t0; r < s1; r++, a += TOKEN_TILE) {
                        out[o + r] = scratch[a];
                    }
                }
            }
        }
    }

    /** Keeps {@link #touch} from being optimised away. */
    private static volatile int sink;

    /** Reads one int of every 64-byte line of w[from, to), in order; returns to. */
    private static long touch(MemorySegment w, long from, long to) {
        int s = 0;
        long at = from;
        for (; at + 4 <= to; at += 64) {
            s += w.get(ValueLayout.JAVA_INT_UNALIGNED, at);
        }
        if (s == 0x12345678) {
            sink = s;
        }
        return Math.max(at, to);
    }

    /** Rows [r, r + nr) of pairs [p0, p1) into wp[off + i * PANEL_STRIDE ..], zero rows after nr. */
    static void convert(DType type, MemorySegment w, int cols, int r, int nr, int p0, int p1, boolean last,
                                float[] wp, int off) {
        int np = p1 - p0;
        int n = 2 * np + (last && cols % 2 != 0 ? 1 : 0);
        for (int i = 0; i < PANEL; i++) {
            int o = off + i * PANEL_STRIDE;
            if (i >= nr) {
                java.util.Arrays.fill(wp, o, o + n, 0f);
                continue;
            }
            if (type != DType.BF16) {
                convertOther(type, w, cols, r + i, p0, np, n > 2 * np, wp, o);
                continue;
            }
            long base = 2L * cols * (r + i);
            int m = 0;
            for (; m + I.length() <= np; m += I.length()) {
                IntVector v = IntVector.fromMemorySegment(I, w, base + 4L * (p0 + m), LE);
                v.lanewise(jdk.incubator.vector.VectorOperators.LSHL, 16).reinterpretAsFloats()
                        .intoArray(wp, o + m);
                v.and(HIGH).reinterpretAsFloats().intoArray(wp, o + np + m);
            }
            for (; m < np; m++) {
                wp[o + m] = element(w, base, 2 * (p0 + m));
                wp[o + np + m] = element(w, base, 2 * (p0 + m) + 1);
            }
            if (n > 2 * np) {
                wp[o + 2 * np] = element(w, base, cols - 1);
            }
        }
    }

    /**
     * Row r, pairs [p0, p0 + np), of an F16 or block-quantized matrix into wp[o ..] in pair order
     * (even columns, then odd ones). Cols of the block types are multiples of 32 and blocks
     * start at multiples of 256 columns, so no quant block straddles two column blocks.
     */
    private static void convertOther(DType type, MemorySegment w, int cols, int r, int p0, int np,
                                     boolean oddLast, float[] wp, int o) {
        if (type == DType.F16) {
            long base = 2L * cols * r;
            int m = 0;
            for (; m + I.length() <= np; m += I.length()) {
                IntVector v = IntVector.fromMemorySegment(I, w, base + 4L * (p0 + m), LE);
                TileDot.f16ToF32(v.and(0xFFFF)).intoArray(wp, o + m);
                TileDot.f16ToF32(v.lanewise(jdk.incubator.vector.VectorOperators.LSHR, 16)).intoArray(wp, o + np + m);
            }
            for (; m < np; m++) {
                wp[o + m] = Float.float16ToFloat(w.get(LE_SHORT, base + 4L * (p0 + m)));
                wp[o + np + m] = Float.float16ToFloat(w.get(LE_SHORT, base + 4L * (p0 + m) + 2));
            }
            if (oddLast) {
                wp[o + 2 * np] = Float.float16ToFloat(w.get(LE_SHORT, base + 2L * (cols - 1)));
            }
            return;
        }
        if (type.rowGrouped()) {
            GroupDot.pairs(type, w, cols, r, p0, np, wp, o);
            return;
        }
        float[] row = NATURAL.get();
        QuantDot.fill(type, w, cols, r, 1, 2 * p0, 2 * (p0 + np), row, 0, 0);
        for (int m = 0; m < np; m++) {
            wp[o + m] = row[2 * m];
            wp[o + np + m] = row[2 * m + 1];
        }
    }

    /** A dequantized row slice in column order, before it is split into even and odd columns. */
    private static final ThreadLocal<float[]> NATURAL = ThreadLocal.withInitial(() -> new float[2 * BLOCK_PAIRS]);

    private static float element(MemorySegment w, long rowBase, int col) {
        return Float.intBitsToFloat((w.get(LE_SHORT, rowBase + 2L * col) & 0xFFFF) << 16);
    }

    /** Six panel rows x 16 tokens over n positions, added to acc[i * TOKEN_TILE + 0..15]. */
    private static void kernel16(float[] wp, int wOff, float[] xT, int xOff, int n,
                                 float[] acc, int aOff) {
        FloatVector a00 = FloatVector.zero(F), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00;
        FloatVector a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
        int w0 = wOff;
        int w1 = w0 + PANEL_STRIDE;
        int w2 = w1 + PANEL_STRIDE;
        int w3 = w2 + PANEL_STRIDE;
        int w4 = w3 + PANEL_STRIDE;
        int w5 = w4 + PANEL_STRIDE;
        for (int k = 0; k < n; k++) {
            FloatVector x0 = FloatVector.fromArray(F, xT, xOff + 2 * L * k);
            FloatVector x1 = FloatVector.fromArray(F, xT, xOff + 2 * L * k + L);
            FloatVector b = FloatVector.broadcast(F, wp[w0 + k]);
            a00 = x0.fma(b, a00);
            a01 = x1.fma(b, a01);
            b = FloatVector.broadcast(F, wp[w1 + k]);
            a10 = x0.fma(b, a10);
            a11 = x1.fma(b, a11);
            b = FloatVector.broadcast(F, wp[w2 + k]);
            a20 = x0.fma(b, a20);
            a21 = x1.fma(b, a21);
            b = FloatVector.broadcast(F, wp[w3 + k]);
            a30 = x0.fma(b, a30);
            a31 = x1.fma(b, a31);
            b = FloatVector.broadcast(F, wp[w4 + k]);
            a40 = x0.fma(b, a40);
            a41 = x1.fma(b, a41);
            b = FloatVector.broadcast(F, wp[w5 + k]);
            a50 = x0.fma(b, a50);
            a51 = x1.fma(b, a51);
        }
        add(acc, aOff, a00);
        add(acc, aOff + L, a01);
        add(acc, aOff + TOKEN_TILE, a10);
        add(acc, aOff + TOKEN_TILE + L, a11);
        add(acc, aOff + 2 * TOKEN_TILE, a20);
        add(acc, aOff + 2 * TOKEN_TILE + L, a21);
        add(acc, aOff + 3 * TOKEN_TILE, a30);
        add(acc, aOff + 3 * TOKEN_TILE + L, a31);
        add(acc, aOff + 4 * TOKEN_TILE, a40);
        add(acc, aOff + 4 * TOKEN_TILE + L, a41);
        add(acc, aOff + 5 * TOKEN_TILE, a50);
        add(acc, aOff + 5 * TOKEN_TILE + L, a51);
    }

    /** Six panel rows x 8 tokens, for the last group of a token tile. */
    private static void kernel8(float[] wp, int wOff, float[] xT, int xOff, int n,
                                float[] acc, int aOff) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
        int w0 = wOff;
        int w1 = w0 + PANEL_STRIDE;
        int w2 = w1 + PANEL_STRIDE;
        int w3 = w2 + PANEL_STRIDE;
        int w4 = w3 + PANEL_STRIDE;
        int w5 = w4 + PANEL_STRIDE;
        for (int k = 0; k < n; k++) {
            FloatVector x0 = FloatVector.fromArray(F, xT, xOff + L * k);
            a0 = x0.fma(FloatVector.broadcast(F, wp[w0 + k]), a0);
            a1 = x0.fma(FloatVector.broadcast(F, wp[w1 + k]), a1);
            a2 = x0.fma(FloatVector.broadcast(F, wp[w2 + k]), a2);
            a3 = x0.fma(FloatVector.broadcast(F, wp[w3 + k]), a3);
            a4 = x0.fma(FloatVector.broadcast(F, wp[w4 + k]), a4);
            a5 = x0.fma(FloatVector.broadcast(F, wp[w5 + k]), a5);
        }
        add(acc, aOff, a0);
        add(acc, aOff + TOKEN_TILE, a1);
        add(acc, aOff + 2 * TOKEN_TILE, a2);
        add(acc, aOff + 3 * TOKEN_TILE, a3);
        add(acc, aOff + 4 * TOKEN_TILE, a4);
        add(acc, aOff + 5 * TOKEN_TILE, a5);
    }

    /**
     * acc[at, at + L) += v: how every register tile of this class is written back. ({@link BroadcastMatmul}
     * writes the same sum out in place: its kernels are too large for C2 to inline this call there, and the
     * vector passed to a call that is not inlined is boxed, about one object per kernel call, measured.)
     */
    static void add(float[] acc, int at, FloatVector v) {
        FloatVector.fromArray(F, acc, at).add(v).intoArray(acc, at);
    }
}
