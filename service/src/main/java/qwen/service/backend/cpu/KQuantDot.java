package qwen.service.backend.cpu;

import static jdk.incubator.vector.VectorOperators.ADD;
import static jdk.incubator.vector.VectorOperators.ASHR;
import static jdk.incubator.vector.VectorOperators.B2S;
import static jdk.incubator.vector.VectorOperators.I2F;
import static jdk.incubator.vector.VectorOperators.LSHL;
import static jdk.incubator.vector.VectorOperators.LSHR;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorSpecies;
import qwen.service.model.DType;

/**
 * Dot products of Q5_0, Q4_K, Q5_K and Q6_K weight rows with 8-bit quantized activations
 * ({@link Q8Activations}), read block by block straight from their segment as {@link QuantDot}
 * reads Q8_0 / Q4_0: the quants are widened to short lanes, multiplied by the activation quants,
 * the 16 products of a lane vector pair-summed exactly into 8 ints, and one FMA per 16 or 32
 * weights scales them into the f32 accumulator.
 *
 * <p>Every activation block of 32 lines up with one Q5_0 block, one Q4_K sub-block (its own
 * 6-bit scale and min) or two Q6_K groups of 16 (a scale each), so each FMA has one scale:
 * <ul>
 * <li>Q5_0: q = nibble | high bit &lt;&lt; 4 in [0, 31], multiplied unsigned (|products| &le;
 *     2 * 31 * 127); the -16 is subtracted per block as 16 * d_w * d_x * sum(x quants).</li>
 * <li>Q4_K: nibbles in [0, 15]; d * sc[j] * d_x scales the integer sum and the min term
 *     dmin * m[j] * d_x * sum(x quants) is subtracted per sub-block.</li>
 * <li>Q5_K: as Q4_K with q = nibble | (qh byte &gt;&gt; j &amp; 1) &lt;&lt; 4 in [0, 31] for sub-block j
 *     (|products| &le; 2 * 31 * 127 per short, as Q5_0).</li>
 * <li>Q6_K: q - 32 in [-32, 31] assembled from the ql nibble and the qh pair of bits, a 16-lane
 *     vector per group of 16 (|products| &le; 32 * 127).</li>
 * </ul>
 *
 * <p>Rows go in pairs, each activation load serving both; an odd last row is paired with itself.
 * Q5_0 and Q6_K are in {@link Q5Dot} and {@link Q6kDot}; Q4_1 and Q5_1 (blocks with a min) are
 * dispatched from here to {@link MinQuantDot}. The kernels are written out without helper calls:
 * C2 stops inlining in methods this large, and a vector live across a call that is not inlined is
 * boxed on the heap.
 *
 * <p>{@link ScalarQuantDot} is the element-by-element reference.
 */
final class KQuantDot {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_256;
    private static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);
    private static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(LE);

    private KQuantDot() {
    }

    /** True for the types this class computes, or hands on to {@link MinQuantDot} (Q4_1, Q5_1). */
    static boolean handles(DType type) {
        return type == DType.Q5_0 || type == DType.Q4_K || type == DType.Q5_K || type == DType.Q6_K
                || MinQuantDot.handles(type);
    }

    /** Rows [r0, r1) of the matrix times token t of the quantized activations a: out[t * rows + r]. */
    static void rows(DType type, MemorySegment w, int rows, int cols, Q8Activations a, int t,
                     float[] out, int r0, int r1) {
        if (MinQuantDot.handles(type)) {
            MinQuantDot.rows(type, w, rows, cols, a, t, out, r0, r1);
            return;
        }
        long rowBytes = type.rowBytes(cols);
        short[] xq = a.quants();
        float[] xd = a.scales();
        int[] xs = a.sums();
        int xo = t * cols;
        int so = t * (cols / 32);
        int o = t * rows;
        for (int r = r0; r < r1; r += 2) {
            // An odd last row is computed as a pair with itself and its twin result dropped.
            long b0 = r * rowBytes;
            long b1 = r + 1 < r1 ? b0 + rowBytes : b0;
            boolean two = r + 1 < r1;
            switch (type) {
                case Q5_0 -> Q5Dot.rows2(w, b0, b1, cols, xq, xo, xd, xs, so, out, o + r, two);
                case Q4_K -> q4kRows2(w, b0, b1, cols, xq, xo, xd, xs, so, out, o + r, two);
                case Q5_K -> q5kRows2(w, b0, b1, cols, xq, xo, xd, xs, so, out, o + r, two);
                case Q6_K -> Q6kDot.rows2(w, b0, b1, cols, xq, xo, xd, so, out, o + r, two);
                default -> throw new IllegalArgumentException(type.tag() + " is not computed here");
            }
        }
    }
    /**
     * Two Q4_K rows at b0 and b1, in one loop over groups of 64 weights (32 bytes): group g of a
     * block gives sub-block 2g from its low nibbles and 2g + 1 from its high ones. A nested loop
     * over blocks and groups measured 20% slower: C2 spilled its accumulators.
     */
    private static void q4kRows2(MemorySegment w, long b0, long b1, int cols, short[] xq, int xo, float[] xd,
                                 int[] xs, int so, float[] out, int at, boolean two) {
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = a0;
        float c0 = 0;
        float c1 = 0;
        int groups = cols / 64;
        for (int gi = 0; gi < groups; gi++) {
            int g = gi & 3;
            long e0 = b0 + 144L * (gi >> 2);
            long e1 = b1 + 144L * (gi >> 2);
            int x = xo + 64 * gi;
            int k = so + 2 * gi;
            float dxA = xd[k];
            float dxB = xd[k + 1];
            float sxA = dxA * xs[k];
            float sxB = dxB * xs[k + 1];
            // The 6-bit scales and mins of sub-blocks 2g and 2g + 1, as the two bytes of an int:
            // for g < 2 the low six bits of scales[2g..] and of mins at scales[4 + 2g..]; for g >= 2
            // the low (high) nibbles of scales[4 + 2g..] under the top two bits of scales[2g - 4..]
            // (scales[2g..]).
            int sc0;
            int mn0;
            int sc1;
            int mn1;
            if (g < 2) {
                sc0 = w.get(LE_SHORT, e0 + 4 + 2 * g) & 0x3F3F;
                mn0 = w.get(LE_SHORT, e0 + 8 + 2 * g) & 0x3F3F;
                sc1 = w.get(LE_SHORT, e1 + 4 + 2 * g) & 0x3F3F;
                mn1 = w.get(LE_SHORT, e1 + 8 + 2 * g) & 0x3F3F;
            } else {
                int low = w.get(LE_SHORT, e0 + 8 + 2 * g);
                sc0 = (low & 0x0F0F) | ((w.get(LE_SHORT, e0 + 2 * g) >>> 2) & 0x3030);
                mn0 = ((low >>> 4) & 0x0F0F) | ((w.get(LE_SHORT, e0 + 4 + 2 * g) >>> 2) & 0x3030);
                low = w.get(LE_SHORT, e1 + 8 + 2 * g);
                sc1 = (low & 0x0F0F) | ((w.get(LE_SHORT, e1 + 2 * g) >>> 2) & 0x3030);
                mn1 = ((low >>> 4) & 0x0F0F) | ((w.get(LE_SHORT, e1 + 4 + 2 * g) >>> 2) & 0x3030);
            }
            float d0 = Float.float16ToFloat(w.get(LE_SHORT, e0));
            float d1 = Float.float16ToFloat(w.get(LE_SHORT, e1));
            long q = e0 + 16 + 32 * g;
            ShortVector v0 = (ShortVector) ByteVector.fromMemorySegment(B16, w, q, LE).convertShape(B2S, S, 0);
            ShortVector v1 = (ShortVector) ByteVector.fromMemorySegment(B16, w, q + 16, LE).convertShape(B2S, S, 0);
            IntVector p = v0.and((short) 15).mul(ShortVector.fromArray(S, xq, x))
                    .add(v1.and((short) 15).mul(ShortVector.fromArray(S, xq, x + 16))).reinterpretAsInts();
            a0 = ((FloatVector) p.add(p.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0))
                    .fma(FloatVector.broadcast(F, d0 * (sc0 & 0xFF) * dxA), a0);
            p = v0.lanewise(ASHR, 4).and((short) 15).mul(ShortVector.fromArray(S, xq, x + 32))
                    .add(v1.lanewise(ASHR, 4).and((short) 15).mul(ShortVector.fromArray(S, xq, x + 48))).reinterpretAsInts();
            a0 = ((FloatVector) p.add(p.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0))
                    .fma(FloatVector.broadcast(F, d0 * ((sc0 >>> 8) & 0xFF) * dxB), a0);
            c0 += Float.float16ToFloat(w.get(LE_SHORT, e0 + 2)) * ((mn0 & 0xFF) * sxA + ((mn0 >>> 8) & 0xFF) * sxB);
            q = e1 + 16 + 32 * g;
            v0 = (ShortVector) ByteVector.fromMemorySegment(B16, w, q, LE).convertShape(B2S, S, 0);
            v1 = (ShortVector) ByteVector.fromMemorySegment(B16, w, q + 16, LE).convertShape(B2S, S, 0);
            p = v0.and((short) 15).mul(ShortVector.fromArray(S, xq, x))
                    .add(v1.and((short) 15).mul(ShortVector.fromArray(S, xq, x + 16))).reinterpretAsInts();
            a1 = ((FloatVector) p.add(p.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0))
                    .fma(FloatVector.broadcast(F, d1 * (sc1 & 0xFF) * dxA), a1);
            p = v0.lanewise(ASHR, 4).and((short) 15).mul(ShortVector.fromArray(S, xq, x + 32))
                    .add(v1.lanewise(ASHR, 4).and((short) 15).mul(ShortVector.fromArray(S, xq, x + 48))).reinterpretAsInts();
            a1 = ((FloatVector) p.add(p.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0))
                    .fma(FloatVector.broadcast(F, d1 * ((sc1 >>> 8) & 0xFF) * dxB), a1);
            c1 += Float.float16ToFloat(w.get(LE_SHORT, e1 + 2)) * ((mn1 & 0xFF) * sxA + ((mn1 >>> 8) & 0xFF) * sxB);
        }
        out[at] = a0.reduceLanes(ADD) - c0;
        if (two) {
            out[at + 1] = a1.reduceLanes(ADD) - c1;
        }
    }

    /**
     * Two Q5_K rows: Q4_K's layout and loop plus qh, whose byte l holds the fifth bit of element
     * l of every sub-block (bit j for sub-block j), read again for each group (from L1). Kept apart
     * from {@link #q4kRows2}: one method for both, the fifth bits behind a flag, measured 6% slower
     * on Q4_K.
     */
    private static void q5kRows2(MemorySegment w, long b0, long b1, int cols, short[] xq, int xo, float[] xd,
                                 int[] xs, int so, float[] out, int at, boolean two) {
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = a0;
        float c0 = 0;
        float c1 = 0;
        int groups = cols / 64;
        for (int gi = 0; gi < groups; gi++) {
            int g = gi & 3;
            long e0 = b0 + 176L * (gi >> 2);
            long e1 = b1 + 176L * (gi >> 2);
            int x = xo + 64 * gi;
            int k = so + 2 * gi;
            float dxA = xd[k];
            float dxB = xd[k + 1];
            float sxA = dxA * xs[k];
            float sxB = dxB * xs[k + 1];
            // Scales and mins of sub-blocks 2g, 2g + 1 as in q4kRows2.
            int sc0;
            int mn0;
            int sc1;
            int mn1;
            if (g < 2) {
                sc0 = w.get(LE_SHORT, e0 + 4 + 2 * g) & 0x3F3F;
                mn0 = w.get(LE_SHORT, e0 + 8 + 2 * g) & 0x3F3F;
                sc1 = w.get(LE_SHORT, e1 + 4 + 2 * g) & 0x3F3F;
                mn1 = w.get(LE_SHORT, e1 + 8 + 2 * g) & 0x3F3F;
            } else {
                int low = w.get(LE_SHORT, e0 + 8 + 2 * g);
                sc0 = (low & 0x0F0F) | ((w.get(LE_SHORT, e0 + 2 * g) >>> 2) & 0x3030);
                mn0 = ((low >>> 4) & 0x0F0F) | ((w.get(LE_SHORT, e0 + 4 + 2 * g) >>> 2) & 0x3030);
                low = w.get(LE_SHORT, e1 + 8 + 2 * g);
                sc1 = (low & 0x0F0F) | ((w.get(LE_SHORT, e1 + 2 * g) >>> 2) & 0x3030);
                mn1 = ((low >>> 4) & 0x0F0F) | ((w.get(LE_SHORT, e1 + 4 + 2 * g) >>> 2) & 0x3030);
            }
            float d0 = Float.float16ToFloat(w.get(LE_SHORT, e0));
            float d1 = Float.float16ToFloat(w.get(LE_SHORT, e1));
            // Bits 0..7 of a widened qh byte survive the sign extension; shifted right by 2g and
            // left by 4, bit 2g lands on 16 (sub-block 2g), and bit 2g + 1 one shift further.
            int j = 2 * g;
            long q = e0 + 48 + 32 * g;
            ShortVector h0 = ((ShortVector) ByteVector.fromMemorySegment(B16, w, e0 + 16, LE).convertShape(B2S, S, 0))
                    .lanewise(LSHL, 4).lanewise(LSHR, j);
            ShortVector h1 = ((ShortVector) ByteVector.fromMemorySegment(B16, w, e0 + 32, LE).convertShape(B2S, S, 0))
                    .lanewise(LSHL, 4).lanewise(LSHR, j);
            ShortVector v0 = (ShortVector) ByteVector.fromMemorySegment(B16, w, q, LE).convertShape(B2S, S, 0);
            ShortVector v1 = (ShortVector) ByteVector.fromMemorySegment(B16, w, q + 16, LE).convertShape(B2S, S, 0);
            IntVector p = v0.and((short) 15).or(h0.and((short) 16)).mul(ShortVector.fromArray(S, xq, x))
                    .add(v1.and((short) 15).or(h1.and((short) 16)).mul(ShortVector.fromArray(S, xq, x + 16)))
                    .reinterpretAsInts();
            a0 = ((FloatVector) p.add(p.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0))
                    .fma(FloatVector.broadcast(F, d0 * (sc0 & 0xFF) * dxA), a0);
            p = v0.lanewise(ASHR, 4).and((short) 15).or(h0.lanewise(LSHR, 1).and((short) 16))
                    .mul(ShortVector.fromArray(S, xq, x + 32))
                    .add(v1.lanewise(ASHR, 4).and((short) 15).or(h1.lanewise(LSHR, 1).and((short) 16))
                            .mul(ShortVector.fromArray(S, xq, x + 48))).reinterpretAsInts();
            a0 = ((FloatVector) p.add(p.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0))
                    .fma(FloatVector.broadcast(F, d0 * ((sc0 >>> 8) & 0xFF) * dxB), a0);
            c0 += Float.float16ToFloat(w.get(LE_SHORT, e0 + 2)) * ((mn0 & 0xFF) * sxA + ((mn0 >>> 8) & 0xFF) * sxB);
            q = e1 + 48 + 32 * g;
            h0 = ((ShortVector) ByteVector.fromMemorySegment(B16, w, e1 + 16, LE).convertShape(B2S, S, 0))
                    .lanewise(LSHL, 4).lanewise(LSHR, j);
            h1 = ((ShortVector) ByteVector.fromMemorySegment(B16, w, e1 + 32, LE).convertShape(B2S, S, 0))
                    .lanewise(LSHL, 4).lanewise(LSHR, j);
            v0 = (ShortVector) ByteVector.fromMemorySegment(B16, w, q, LE).convertShape(B2S, S, 0);
            v1 = (ShortVector) ByteVector.fromMemorySegment(B16, w, q + 16, LE).convertShape(B2S, S, 0);
            p = v0.and((short) 15).or(h0.and((short) 16)).mul(ShortVector.fromArray(S, xq, x))
                    .add(v1.and((short) 15).or(h1.and((short) 16)).mul(ShortVector.fromArray(S, xq, x + 16)))
                    .reinterpretAsInts();
            a1 = ((FloatVector) p.add(p.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0))
                    .fma(FloatVector.broadcast(F, d1 * (sc1 & 0xFF) * dxA), a1);
            p = v0.lanewise(ASHR, 4).and((short) 15).or(h0.lanewise(LSHR, 1).and((short) 16))
                    .mul(ShortVector.fromArray(S, xq, x + 32))
                    .add(v1.lanewise(ASHR, 4).and((short) 15).or(h1.lanewise(LSHR, 1).and((short) 16))
                            .mul(ShortVector.fromArray(S, xq, x + 48))).reinterpretAsInts();
            a1 = ((FloatVector) p.add(p.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0))
                    .fma(FloatVector.broadcast(F, d1 * ((sc1 >>> 8) & 0xFF) * dxB), a1);
            c1 += Float.float16ToFloat(w.get(LE_SHORT, e1 + 2)) * ((mn1 & 0xFF) * sxA + ((mn1 >>> 8) & 0xFF) * sxB);
        }
        out[at] = a0.reduceLanes(ADD) - c0;
        if (two) {
            out[at + 1] = a1.reduceLanes(ADD) - c1;
        }
    }

    /**
     * Rows [r, r + n) of a Q5_0 / Q4_K / Q5_K / Q6_K matrix, columns [c0, c1) (whole blocks),
     * dequantized to tile[k * stride + (c - c0)] for row r + k: the prefill path's weights.
     */
    static void fill(DType type, MemorySegment w, int cols, int r, int n, int c0, int c1, float[] tile, int off,
                     int stride) {
        if (MinQuantDot.handles(type)) {
            MinQuantDot.fill(type, w, cols, r, n, c0, c1, tile, off, stride);
            return;
        }
        if (type == DType.Q5_0) {
            Q5Dot.fill(w, cols, r, n, c0, c1, tile, off, stride);
            return;
        }
        KQuantFill.fill(type, w, cols, r, n, c0, c1, tile, off, stride);
    }
}
