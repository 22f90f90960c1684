package qwen.service.backend.cpu;

import static jdk.incubator.vector.VectorOperators.ADD;
import static jdk.incubator.vector.VectorOperators.ASHR;
import static jdk.incubator.vector.VectorOperators.B2I;
import static jdk.incubator.vector.VectorOperators.B2S;
import static jdk.incubator.vector.VectorOperators.I2F;
import static jdk.incubator.vector.VectorOperators.LSHL;
import static jdk.incubator.vector.VectorOperators.LSHR;
import static jdk.incubator.vector.VectorOperators.NE;

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
 * Decode dot products of Q5_0 rows (22-byte blocks of 32: f16 d, uint32 qh, 16 bytes of nibbles)
 * with 8-bit activations ({@link Q8Activations}), two rows at a time, for {@link KQuantDot}:
 * q = nibble | bit &lt;&lt; 4 in [0, 31] is multiplied unsigned (|products| &le; 2 * 31 * 127 per
 * short), and the -16 is subtracted per block as 16 * d_w * d_x * sum(x quants).
 */
final class Q5Dot {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_256;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final VectorSpecies<Byte> B8 = ByteVector.SPECIES_64;
    private static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);
    private static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(LE);
    /** Lane i's bit: masks a broadcast half of qh down to the fifth bit of element i. */
    private static final short[] BITS = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384,
        (short) 32768};
    /** Element i's bit position in qh, for the 8-lane int shifts of {@link #fill} (AVX2 shifts 32-bit lanes per lane). */
    private static final int[] SHIFTS = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
        21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};

    private Q5Dot() {
    }

    /**
     * Two Q5_0 rows at b0 and b1. The fifth bits: a half of qh is broadcast to the 16 lanes and
     * masked with lane i's bit (AVX2 has no per-lane 16-bit shift), and the lanes whose bit is
     * set get 16.
     */
    static void rows2(MemorySegment w, long b0, long b1, int cols, short[] xq, int xo, float[] xd,
                      int[] xs, int so, float[] out, int at, boolean two) {
        ShortVector bits = ShortVector.fromArray(S, BITS, 0);
        ShortVector sixteen = ShortVector.broadcast(S, (short) 16);
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = a0;
        float c0 = 0;
        float c1 = 0;
        int blocks = cols / 32;
        for (int k = 0; k < blocks; k++) {
            long e0 = b0 + 22L * k;
            long e1 = b1 + 22L * k;
            ShortVector x0 = ShortVector.fromArray(S, xq, xo + 32 * k);
            ShortVector x1 = ShortVector.fromArray(S, xq, xo + 32 * k + 16);
            float dx = xd[so + k];
            float sx = xs[so + k];
            // Written out for both rows: vectors returned from helpers C2 does not inline are boxed.
            int qh = w.get(LE_INT, e0 + 2);
            ShortVector v = (ShortVector) ByteVector.fromMemorySegment(B16, w, e0 + 6, LE).convertShape(B2S, S, 0);
            ShortVector q0 = v.and((short) 15).or(sixteen.and(ShortVector.broadcast(S, (short) qh).and(bits)
                    .compare(NE, (short) 0).toVector().reinterpretAsShorts()));
            ShortVector q1 = v.lanewise(ASHR, 4).and((short) 15).or(sixteen.and(ShortVector.broadcast(S,
                    (short) (qh >>> 16)).and(bits).compare(NE, (short) 0).toVector().reinterpretAsShorts()));
            IntVector p = q0.mul(x0).add(q1.mul(x1)).reinterpretAsInts();
            float d = Float.float16ToFloat(w.get(LE_SHORT, e0)) * dx;
            // |p| <= 2 * 31 * 127 per short: (v + (v << 16)) >> 16 is the exact pair sum.
            a0 = ((FloatVector) p.add(p.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0))
                    .fma(FloatVector.broadcast(F, d), a0);
            c0 += d * sx;
            qh = w.get(LE_INT, e1 + 2);
            v = (ShortVector) ByteVector.fromMemorySegment(B16, w, e1 + 6, LE).convertShape(B2S, S, 0);
            q0 = v.and((short) 15).or(sixteen.and(ShortVector.broadcast(S, (short) qh).and(bits)
                    .compare(NE, (short) 0).toVector().reinterpretAsShorts()));
            q1 = v.lanewise(ASHR, 4).and((short) 15).or(sixteen.and(ShortVector.broadcast(S,
                    (short) (qh >>> 16)).and(bits).compare(NE, (short) 0).toVector().reinterpretAsShorts()));
            p = q0.mul(x0).add(q1.mul(x1)).reinterpretAsInts();
            d = Float.float16ToFloat(w.get(LE_SHORT, e1)) * dx;
            a1 = ((FloatVector) p.add(p.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0))
                    .fma(FloatVector.broadcast(F, d), a1);
            c1 += d * sx;
        }
        out[at] = a0.reduceLanes(ADD) - 16 * c0;
        if (two) {
            out[at + 1] = a1.reduceLanes(ADD) - 16 * c1;
        }
    }


    /**
     * Rows [r, r + n) of a Q5_0 matrix, columns [c0, c1) (whole blocks), dequantized to
     * tile[k * stride + (c - c0)] for row r + k (the prefill path's weights): d * (q - 16), eight
     * elements per int vector.
     */
    static void fill(MemorySegment w, int cols, int r, int n, int c0, int c1, float[] tile, int off, int stride) {
        if (c0 % 32 != 0 || c1 % 32 != 0) {
            throw new IllegalArgumentException("columns [" + c0 + ", " + c1 + ") are not whole Q5_0 blocks");
        }
        long rowBytes = DType.Q5_0.rowBytes(cols);
        for (int k = 0; k < n; k++) {
            int o = off + k * stride - c0;
            long b = (r + k) * rowBytes + (long) (c0 / 32) * 22;
            for (int c = c0; c < c1; c += 32, b += 22) {
                FloatVector d = FloatVector.broadcast(F, Float.float16ToFloat(w.get(LE_SHORT, b)));
                IntVector qh = IntVector.broadcast(I, w.get(LE_INT, b + 2));
                for (int g = 0; g < 2; g++) {
                    IntVector v = (IntVector) ByteVector.fromMemorySegment(B8, w, b + 6 + 8 * g, LE).convertShape(B2I, I, 0);
                    // Elements 8g.. from the low nibbles, 16 + 8g.. from the high ones.
                    IntVector lo = v.and(15).or(qh.lanewise(LSHR, IntVector.fromArray(I, SHIFTS, 8 * g)).and(1)
                            .lanewise(LSHL, 4)).sub(16);
                    IntVector hi = v.lanewise(LSHR, 4).and(15).or(qh.lanewise(LSHR, IntVector.fromArray(I, SHIFTS, 16 + 8 * g))
                            .and(1).lanewise(LSHL, 4)).sub(16);
                    ((FloatVector) lo.convert(I2F, 0)).mul(d).intoArray(tile, o + c + 8 * g);
                    ((FloatVector) hi.convert(I2F, 0)).mul(d).intoArray(tile, o + c + 16 + 8 * g);
                }
            }
        }
    }
}
