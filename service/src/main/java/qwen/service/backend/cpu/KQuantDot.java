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
import qwen.service.model.KQuantBlocks;

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
 * <p>Q4_1 and Q5_1 (blocks with a min) are dispatched from here to {@link MinQuantDot}.
 * {@link ScalarQuantDot} is the element-by-element reference.
 */
final class KQuantDot {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_256;
    private static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);
    private static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(LE);
    /** Lane i shifts a broadcast qh half right by i, putting bit i in lane i's bit 0. */
    private static final short[] IOTA = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

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
        for (int r = r0; r < r1; r++) {
            long base = r * rowBytes;
            out[o + r] = switch (type) {
                case Q5_0 -> q5Row(w, base, cols, xq, xo, xd, xs, so);
                case Q4_K -> q4kRow(w, base, cols, xq, xo, xd, xs, so);
                case Q5_K -> q5kRow(w, base, cols, xq, xo, xd, xs, so);
                case Q6_K -> q6kRow(w, base, cols, xq, xo, xd, so);
                default -> throw new IllegalArgumentException(type.tag() + " is not computed here");
            };
        }
    }

    private static float f16(MemorySegment w, long at) {
        return Float.float16ToFloat(w.get(LE_SHORT, at));
    }

    private static float q5Row(MemorySegment w, long base, int cols, short[] xq, int xo, float[] xd, int[] xs,
                               int so) {
        ShortVector iota = ShortVector.fromArray(S, IOTA, 0);
        FloatVector acc = FloatVector.zero(F);
        float corr = 0;
        long b = base;
        for (int c = 0, k = so; c < cols; c += 32, k++, b += 22) {
            int qh = w.get(LE_INT, b + 2);
            ShortVector v = (ShortVector) ByteVector.fromMemorySegment(B16, w, b + 6, LE).convertShape(B2S, S, 0);
            ShortVector h0 = ShortVector.broadcast(S, (short) qh).lanewise(LSHR, iota).and((short) 1).lanewise(LSHL, 4);
            ShortVector h1 = ShortVector.broadcast(S, (short) (qh >>> 16)).lanewise(LSHR, iota).and((short) 1)
                    .lanewise(LSHL, 4);
            ShortVector q0 = v.and((short) 15).or(h0);
            ShortVector q1 = v.lanewise(ASHR, 4).and((short) 15).or(h1);
            IntVector p = q0.mul(ShortVector.fromArray(S, xq, xo + c))
                    .add(q1.mul(ShortVector.fromArray(S, xq, xo + c + 16))).reinterpretAsInts();
            float d = f16(w, b) * xd[k];
            // |p| <= 2 * 31 * 127 per short: (v + (v << 16)) >> 16 is the exact pair sum.
            acc = ((FloatVector) p.add(p.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0))
                    .fma(FloatVector.broadcast(F, d), acc);
            corr += d * xs[k];
        }
        return acc.reduceLanes(ADD) - 16 * corr;
    }

    private static float q4kRow(MemorySegment w, long base, int cols, short[] xq, int xo, float[] xd, int[] xs,
                                int so) {
        FloatVector acc = FloatVector.zero(F);
        float corr = 0;
        long b = base;
        for (int c = 0; c < cols; c += 256, b += 144) {
            float d = f16(w, b);
            float dmin = f16(w, b + 2);
            for (int g = 0; g < 4; g++) {
                long qs = b + 16 + 32 * g;
                int x = xo + c + 64 * g;
                int k = so + (c + 64 * g) / 32;
                ShortVector v0 = (ShortVector) ByteVector.fromMemorySegment(B16, w, qs, LE).convertShape(B2S, S, 0);
                ShortVector v1 = (ShortVector) ByteVector.fromMemorySegment(B16, w, qs + 16, LE).convertShape(B2S, S, 0);
                // Sub-block 2g: the low nibbles of the 32 bytes; sub-block 2g + 1: the high ones.
                IntVector p = v0.and((short) 15).mul(ShortVector.fromArray(S, xq, x))
                        .add(v1.and((short) 15).mul(ShortVector.fromArray(S, xq, x + 16))).reinterpretAsInts();
                float s0 = d * KQuantBlocks.q4kScale(w, b + 4, 2 * g) * xd[k];
                acc = ((FloatVector) p.add(p.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0))
                        .fma(FloatVector.broadcast(F, s0), acc);
                corr += dmin * KQuantBlocks.q4kMin(w, b + 4, 2 * g) * xd[k] * xs[k];
                p = v0.lanewise(ASHR, 4).and((short) 15).mul(ShortVector.fromArray(S, xq, x + 32))
                        .add(v1.lanewise(ASHR, 4).and((short) 15).mul(ShortVector.fromArray(S, xq, x + 48)))
                        .reinterpretAsInts();
                float s1 = d * KQuantBlocks.q4kScale(w, b + 4, 2 * g + 1) * xd[k + 1];
                acc = ((FloatVector) p.add(p.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0))
                        .fma(FloatVector.broadcast(F, s1), acc);
                corr += dmin * KQuantBlocks.q4kMin(w, b + 4, 2 * g + 1) * xd[k + 1] * xs[k + 1];
            }
        }
        return acc.reduceLanes(ADD) - corr;
    }

    private static float q5kRow(MemorySegment w, long base, int cols, short[] xq, int xo, float[] xd, int[] xs,
                                int so) {
        FloatVector acc = FloatVector.zero(F);
        float corr = 0;
        long b = base;
        for (int c = 0; c < cols; c += 256, b += 176) {
            float d = f16(w, b);
            float dmin = f16(w, b + 2);
            // qh[l] holds the fifth bit of element l of every sub-block: bit j for sub-block j (bits
            // 0..7 survive the sign extension to short unchanged).
            ShortVector h0 = (ShortVector) ByteVector.fromMemorySegment(B16, w, b + 16, LE).convertShape(B2S, S, 0);
            ShortVector h1 = (ShortVector) ByteVector.fromMemorySegment(B16, w, b + 32, LE).convertShape(B2S, S, 0);
            for (int g = 0; g < 4; g++) {
                long qs = b + 48 + 32 * g;
                int x = xo + c + 64 * g;
                int k = so + (c + 64 * g) / 32;
                ShortVector v0 = (ShortVector) ByteVector.fromMemorySegment(B16, w, qs, LE).convertShape(B2S, S, 0);
                ShortVector v1 = (ShortVector) ByteVector.fromMemorySegment(B16, w, qs + 16, LE).convertShape(B2S, S, 0);
                int j = 2 * g;
                ShortVector q0 = v0.and((short) 15).or(h0.lanewise(LSHR, j).and((short) 1).lanewise(LSHL, 4));
                ShortVector q1 = v1.and((short) 15).or(h1.lanewise(LSHR, j).and((short) 1).lanewise(LSHL, 4));
                IntVector p = q0.mul(ShortVector.fromArray(S, xq, x)).add(q1.mul(ShortVector.fromArray(S, xq, x + 16)))
                        .reinterpretAsInts();
                float s0 = d * KQuantBlocks.q4kScale(w, b + 4, j) * xd[k];
                acc = ((FloatVector) p.add(p.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0))
                        .fma(FloatVector.broadcast(F, s0), acc);
                corr += dmin * KQuantBlocks.q4kMin(w, b + 4, j) * xd[k] * xs[k];
                q0 = v0.lanewise(ASHR, 4).and((short) 15).or(h0.lanewise(LSHR, j + 1).and((short) 1).lanewise(LSHL, 4));
                q1 = v1.lanewise(ASHR, 4).and((short) 15).or(h1.lanewise(LSHR, j + 1).and((short) 1).lanewise(LSHL, 4));
                p = q0.mul(ShortVector.fromArray(S, xq, x + 32)).add(q1.mul(ShortVector.fromArray(S, xq, x + 48)))
                        .reinterpretAsInts();
                float s1 = d * KQuantBlocks.q4kScale(w, b + 4, j + 1) * xd[k + 1];
                acc = ((FloatVector) p.add(p.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0))
                        .fma(FloatVector.broadcast(F, s1), acc);
                corr += dmin * KQuantBlocks.q4kMin(w, b + 4, j + 1) * xd[k + 1] * xs[k + 1];
            }
        }
        return acc.reduceLanes(ADD) - corr;
    }

    private static float q6kRow(MemorySegment w, long base, int cols, short[] xq, int xo, float[] xd, int so) {
        FloatVector acc = FloatVector.zero(F);
        long b = base;
        for (int c = 0; c < cols; c += 256, b += 210) {
            float d = f16(w, b + 208);
            for (int h = 0; h < 2; h++) {
                for (int half = 0; half < 2; half++) {
                    long l = 16 * half;
                    ShortVector qlA = (ShortVector) ByteVector.fromMemorySegment(B16, w, b + 64 * h + l, LE)
                            .convertShape(B2S, S, 0);
                    ShortVector qlB = (ShortVector) ByteVector.fromMemorySegment(B16, w, b + 64 * h + 32 + l, LE)
                            .convertShape(B2S, S, 0);
                    ShortVector qh = (ShortVector) ByteVector.fromMemorySegment(B16, w, b + 128 + 32 * h + l, LE)
                            .convertShape(B2S, S, 0);
                    for (int quad = 0; quad < 4; quad++) {
                        ShortVector ql = (quad & 1) == 0 ? qlA : qlB;
                        ShortVector low = quad < 2 ? ql.and((short) 15) : ql.lanewise(ASHR, 4).and((short) 15);
                        ShortVector q = low.or(qh.lanewise(ASHR, 2 * quad).and((short) 3).lanewise(LSHL, 4))
                                .sub((short) 32);
                        int e = 128 * h + 32 * quad + (int) l;
                        IntVector p = q.mul(ShortVector.fromArray(S, xq, xo + c + e)).reinterpretAsInts();
                        float s = d * w.get(ValueLayout.JAVA_BYTE, b + 192 + e / 16) * xd[so + (c + e) / 32];
                        acc = ((FloatVector) p.add(p.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0))
                                .fma(FloatVector.broadcast(F, s), acc);
                    }
                }
            }
        }
        return acc.reduceLanes(ADD);
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
        int size = type.blockSize();
        if (c0 % size != 0 || (c1 % size != 0 && c1 != cols)) {
            throw new IllegalArgumentException("columns [" + c0 + ", " + c1 + ") are not whole " + type.tag() + " blocks");
        }
        long rowBytes = type.rowBytes(cols);
        for (int k = 0; k < n; k++) {
            int o = off + k * stride - c0;
            long b = (r + k) * rowBytes + (long) (c0 / size) * type.blockBytes();
            for (int c = c0; c < c1; c += size, b += type.blockBytes()) {
                qwen.service.model.QuantBlocks.decodeBlock(type, w, b, tile, o + c);
            }
        }
    }
}
