package qwen.service.backend.cpu;

import static jdk.incubator.vector.VectorOperators.ADD;
import static jdk.incubator.vector.VectorOperators.ASHR;
import static jdk.incubator.vector.VectorOperators.B2I;
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
 * Q4_1 and Q5_1, the 32-weight blocks with a min of their own (w = d * q + m, q in [0, 15] or
 * [0, 31]): dot products of a row with 8-bit quantized activations ({@link Q8Activations}) and
 * the dequantization of tiles for prefill. Reached through {@link KQuantDot}'s dispatch.
 *
 * <p>Per block, sum over i of (d q_i + m) d_x x_i = d d_x sum(q_i x_i) + m d_x sum(x_i): the first
 * term is the integer dot product of the unsigned quants with the activation quants, pair-summed
 * exactly in int lanes (|products| &le; 2 * 31 * 127 per short) and scaled by one FMA; the second
 * takes the block sum of the activation quants from {@link Q8Activations#sums} and is added in a
 * scalar per row, as the -8 of Q4_0 is taken off in {@link QuantDot}. Q5_1's fifth bits are
 * spread over lanes by multiplying the broadcast qh half by 2^(15 - lane), see {@link #TO_TOP}.
 *
 * <p>The loops are written out: a vector returned from a helper that C2 does not inline is boxed
 * on the heap. {@link ScalarQuantDot} is the element-by-element reference.
 */
final class MinQuantDot {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_256;
    private static final VectorSpecies<Byte> B8 = ByteVector.SPECIES_64;
    private static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);
    private static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(LE);
    /**
     * Lane i multiplies a broadcast qh half by 2^(15 - i), moving bit i to bit 15: AVX2 has no
     * variable shift of 16-bit lanes (a shift by a vector of counts is emulated, at about a third
     * of the speed measured), but a 16-bit multiply is one instruction.
     */
    private static final short[] TO_TOP = {
        (short) 0x8000, 0x4000, 0x2000, 0x1000, 0x800, 0x400, 0x200, 0x100, 0x80, 0x40, 0x20, 0x10, 8, 4, 2, 1};
    /** The same for the 8 int lanes of the tile fill: element e's bit e of qh. */
    private static final int[] BIT = {
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
        16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};

    private MinQuantDot() {
    }

    /** True for the types this class computes. */
    static boolean handles(DType type) {
        return type.withMin();
    }

    /** Rows [r0, r1) of the matrix times token t of the quantized activations a: out[t * rows + r]. */
    static void rows(DType type, MemorySegment w, int rows, int cols, Q8Activations a, int t,
                     float[] out, int r0, int r1) {
        long rowBytes = type.rowBytes(cols);
        short[] xq = a.quants();
        float[] xd = a.scales();
        int[] xs = a.sums();
        int xo = t * cols;
        int so = t * (cols / 32);
        int o = t * rows;
        for (int r = r0; r < r1; r++) {
            long base = r * rowBytes;
            out[o + r] = switch (type) {
                case Q4_1 -> q41Row(w, base, cols, xq, xo, xd, xs, so);
                case Q5_1 -> q51Row(w, base, cols, xq, xo, xd, xs, so);
                default -> throw new IllegalArgumentException(type.tag() + " is not computed here");
            };
        }
    }

    private static float f16(MemorySegment w, long at) {
        return Float.float16ToFloat(w.get(LE_SHORT, at));
    }

    /** Q4_1 blocks: f16 d, f16 m, 16 bytes of nibbles (elements 0..15 low, 16..31 high). */
    private static float q41Row(MemorySegment w, long base, int cols, short[] xq, int xo, float[] xd, int[] xs,
                                int so) {
        FloatVector acc = FloatVector.zero(F);
        float mins = 0;
        long b = base;
        for (int c = 0, k = so; c < cols; c += 32, k++, b += 20) {
            ShortVector v = (ShortVector) ByteVector.fromMemorySegment(B16, w, b + 4, LE).convertShape(B2S, S, 0);
            IntVector p = v.and((short) 15).mul(ShortVector.fromArray(S, xq, xo + c))
                    .add(v.lanewise(ASHR, 4).and((short) 15).mul(ShortVector.fromArray(S, xq, xo + c + 16)))
                    .reinterpretAsInts();
            float dx = xd[k];
            // |p| <= 2 * 15 * 127 per short: (v + (v << 16)) >> 16 is the exact pair sum.
            acc = ((FloatVector) p.add(p.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0))
                    .fma(FloatVector.broadcast(F, f16(w, b) * dx), acc);
            mins += f16(w, b + 2) * dx * xs[k];
        }
        return acc.reduceLanes(ADD) + mins;
    }

    /** Q5_1 blocks: f16 d, f16 m, uint32 qh (bit e: the fifth bit of element e), 16 bytes of nibbles. */
    private static float q51Row(MemorySegment w, long base, int cols, short[] xq, int xo, float[] xd, int[] xs,
                                int so) {
        ShortVector toTop = ShortVector.fromArray(S, TO_TOP, 0);
        FloatVector acc = FloatVector.zero(F);
        float mins = 0;
        long b = base;
        for (int c = 0, k = so; c < cols; c += 32, k++, b += 24) {
            int qh = w.get(LE_INT, b + 4);
            ShortVector v = (ShortVector) ByteVector.fromMemorySegment(B16, w, b + 8, LE).convertShape(B2S, S, 0);
            // Bit i at bit 15, then down to bit 4: the fifth bit of element i (and 16 + i).
            ShortVector h0 = ShortVector.broadcast(S, (short) qh).mul(toTop).lanewise(LSHR, 11).and((short) 16);
            ShortVector h1 = ShortVector.broadcast(S, (short) (qh >>> 16)).mul(toTop).lanewise(LSHR, 11).and((short) 16);
            ShortVector q0 = v.and((short) 15).or(h0);
            ShortVector q1 = v.lanewise(ASHR, 4).and((short) 15).or(h1);
            IntVector p = q0.mul(ShortVector.fromArray(S, xq, xo + c))
                    .add(q1.mul(ShortVector.fromArray(S, xq, xo + c + 16))).reinterpretAsInts();
            float dx = xd[k];
            // |p| <= 2 * 31 * 127 per short: the same exact pair sum.
            acc = ((FloatVector) p.add(p.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0))
                    .fma(FloatVector.broadcast(F, f16(w, b) * dx), acc);
            mins += f16(w, b + 2) * dx * xs[k];
        }
        return acc.reduceLanes(ADD) + mins;
    }

    /**
     * Rows [r, r + n) of a Q4_1 / Q5_1 matrix, columns [c0, c1) (whole blocks), dequantized to
     * tile[k * stride + (c - c0)] for row r + k: the prefill path's weights. Each weight is d * q
     * rounded, then + m rounded, the arithmetic of the reference decoder, so the tiles hold the
     * same bits as {@link qwen.service.model.QuantBlocks#element}.
     */
    static void fill(DType type, MemorySegment w, int cols, int r, int n, int c0, int c1, float[] tile, int off,
                     int stride) {
        if (c0 % 32 != 0 || (c1 % 32 != 0 && c1 != cols)) {
            throw new IllegalArgumentException("columns [" + c0 + ", " + c1 + ") are not whole " + type.tag() + " blocks");
        }
        boolean five = type == DType.Q5_1;
        int bytes = type.blockBytes();
        long rowBytes = type.rowBytes(cols);
        for (int k = 0; k < n; k++) {
            int o = off + k * stride - c0;
            long b = (r + k) * rowBytes + (long) (c0 / 32) * bytes;
            for (int c = c0; c < c1; c += 32, b += bytes) {
                FloatVector d = FloatVector.broadcast(F, f16(w, b));
                FloatVector m = FloatVector.broadcast(F, f16(w, b + 2));
                IntVector qh = IntVector.broadcast(I, five ? w.get(LE_INT, b + 4) : 0);
                long qs = five ? b + 8 : b + 4;
                for (int g = 0; g < 2; g++) {
                    IntVector v = (IntVector) ByteVector.fromMemorySegment(B8, w, qs + 8 * g, LE).convertShape(B2I, I, 0);
                    // Elements 8g.. from the low nibbles, 16 + 8g.. from the high ones; a Q4_1
                    // block's qh is 0, so its fifth bits are too.
                    IntVector lo = v.and(15).or(qh.lanewise(LSHR, IntVector.fromArray(I, BIT, 8 * g)).and(1)
                            .lanewise(LSHL, 4));
                    IntVector hi = v.lanewise(LSHR, 4).and(15).or(qh.lanewise(LSHR, IntVector.fromArray(I, BIT, 16 + 8 * g))
                            .and(1).lanewise(LSHL, 4));
                    ((FloatVector) lo.convert(I2F, 0)).mul(d).add(m).intoArray(tile, o + c + 8 * g);
                    ((FloatVector) hi.convert(I2F, 0)).mul(d).add(m).intoArray(tile, o + c + 16 + 8 * g);
                }
            }
        }
    }
}
