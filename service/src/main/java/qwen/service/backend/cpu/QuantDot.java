package qwen.service.backend.cpu;

import static jdk.incubator.vector.VectorOperators.ADD;
import static jdk.incubator.vector.VectorOperators.ASHR;
import static jdk.incubator.vector.VectorOperators.B2F;
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
 * Dot products of Q8_0 and Q4_0 weight rows, read block by block straight from their segment
 * (never dequantized to a copy), with the activations quantized once per call to 8-bit blocks of
 * their own ({@link Q8Activations}), as llama.cpp does: a block's 32 products are then integer
 * multiplications, and only one int-to-float conversion and one FMA per block remain.
 *
 * <p>Per block, the 32 weights are widened to two vectors of 16 shorts, multiplied lane by lane
 * with the activation quants (also shorts), and the two product vectors added: each short is
 * at most 2 * 128 * 127 = 32512 in magnitude, so nothing overflows. Reinterpreted as 8 ints, each
 * lane holds two of those shorts; (v << 16) >> 16 plus v >> 16 adds them exactly, I2F converts
 * the 8 sums, and one FMA scales them by d_w * d_x into the row's f32 accumulator. The Vector API
 * has no widening multiply-add (AVX2's vpmaddubsw / vpmaddwd), so this is the shortest sequence
 * it compiles to; it does about half the work per weight of widening every byte to f32.
 *
 * <p>Two rows are done at a time so each activation load serves both; more rows would keep too
 * many vectors live for the sixteen AVX2 registers. Q4_0 stores q + 8 in [0, 15]: the nibbles are
 * masked out of the widened bytes and multiplied as they are, and 8 * sum(x) taken off per block.
 *
 * <p>{@link ScalarQuantDot} is the element-by-element reference of the same arithmetic.
 */
final class QuantDot {

    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_256;
    private static final VectorSpecies<Byte> B = ByteVector.SPECIES_64;
    private static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfShort LE_SHORT =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);

    private QuantDot() {
    }

    /**
     * Rows [r0, r1) of a block-quantized matrix (Q5_0 and the K-quants through {@link KQuantDot}) times token t of the quantized activations a:
     * out[t * rows + r].
     */
    static void rows(DType type, MemorySegment w, int rows, int cols, Q8Activations a, int t,
                     float[] out, int r0, int r1) {
        if (KQuantDot.handles(type)) {
            KQuantDot.rows(type, w, rows, cols, a, t, out, r0, r1);
            return;
        }
        long rowBytes = type.rowBytes(cols);
        short[] xq = a.quants();
        float[] xd = a.scales();
        int xo = t * cols;
        int so = t * (cols / 32);
        int o = t * rows;
        int r = r0;
        if (type == DType.Q8_0) {
            for (; r + 2 <= r1; r += 2) {
                q8Rows2(w, r * rowBytes, rowBytes, cols, xq, xo, xd, so, out, o + r);
            }
            if (r < r1) {
                out[o + r] = q8Row(w, r * rowBytes, cols, xq, xo, xd, so);
            }
        } else if (type == DType.Q4_0) {
            for (; r + 2 <= r1; r += 2) {
                q4Rows2(w, r * rowBytes, rowBytes, cols, xq, xo, xd, a.sums(), so, out, o + r);
            }
            if (r < r1) {
                out[o + r] = q4Row(w, r * rowBytes, cols, xq, xo, xd, a.sums(), so);
            }
        } else if (type == DType.Q4_G128) {
            for (; r + 2 <= r1; r += 2) {
                g128Rows2(w, r * rowBytes, rowBytes, cols, xq, xo, xd, a.sums(), so, out, o + r);
            }
            if (r < r1) {
                out[o + r] = g128Row(w, r * rowBytes, cols, xq, xo, xd, a.sums(), so);
            }
        } else {
            throw new IllegalArgumentException(type.tag() + " has no 8-bit activation kernel");
        }
    }

    private static float scale(MemorySegment w, long at) {
        return Float.float16ToFloat(w.get(LE_SHORT, at));
    }

    /** Q8_0 weight quants [at, at + 16) as 16 short lanes. */
    private static ShortVector q8(MemorySegment w, long at) {
        return (ShortVector) ByteVector.fromMemorySegment(B16, w, at, LE).convertShape(B2S, S, 0);
    }

    /** The 8 exact pair sums of the 16 products in p, as f32. */
    private static FloatVector pairSums(ShortVector p) {
        IntVector v = p.reinterpretAsInts();
        return (FloatVector) v.lanewise(LSHL, 16).lanewise(ASHR, 16).add(v.lanewise(ASHR, 16)).convert(I2F, 0);
    }

    /** Two Q8_0 rows from byte offset base, rowBytes apart: out[o], out[o + 1]. */
    private static void q8Rows2(MemorySegment w, long base, long rowBytes, int cols, short[] xq, int xo,
                                float[] xd, int so, float[] out, int o) {
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = a0;
        long b0 = base;
        long b1 = base + rowBytes;
        for (int c = 0, k = so; c < cols; c += 32, k++, b0 += 34, b1 += 34) {
            // Written out rather than through the helpers: C2 would not inline them all here, and
            // a vector returned from a call that is not inlined is boxed on the heap.
            ShortVector x0 = ShortVector.fromArray(S, xq, xo + c);
            ShortVector x1 = ShortVector.fromArray(S, xq, xo + c + 16);
            float dx = xd[k];
            ShortVector w0 = (ShortVector) ByteVector.fromMemorySegment(B16, w, b0 + 2, LE).convertShape(B2S, S, 0);
            ShortVector w1 = (ShortVector) ByteVector.fromMemorySegment(B16, w, b0 + 18, LE).convertShape(B2S, S, 0);
            IntVector p = w0.mul(x0).add(w1.mul(x1)).reinterpretAsInts();
            a0 = ((FloatVector) p.lanewise(LSHL, 16).lanewise(ASHR, 16).add(p.lanewise(ASHR, 16)).convert(I2F, 0))
                    .fma(FloatVector.broadcast(F, scale(w, b0) * dx), a0);
            w0 = (ShortVector) ByteVector.fromMemorySegment(B16, w, b1 + 2, LE).convertShape(B2S, S, 0);
            w1 = (ShortVector) ByteVector.fromMemorySegment(B16, w, b1 + 18, LE).convertShape(B2S, S, 0);
            p = w0.mul(x0).add(w1.mul(x1)).reinterpretAsInts();
            a1 = ((FloatVector) p.lanewise(LSHL, 16).lanewise(ASHR, 16).add(p.lanewise(ASHR, 16)).convert(I2F, 0))
                    .fma(FloatVector.broadcast(F, scale(w, b1) * dx), a1);
        }
        out[o] = a0.reduceLanes(ADD);
        out[o + 1] = a1.reduceLanes(ADD);
    }

    private static float q8Row(MemorySegment w, long base, int cols, short[] xq, int xo, float[] xd, int so) {
        FloatVector a = FloatVector.zero(F);
        long b = base;
        for (int c = 0, k = so; c < cols; c += 32, k++, b += 34) {
            ShortVector p = q8(w, b + 2).mul(ShortVector.fromArray(S, xq, xo + c))
                    .add(q8(w, b + 18).mul(ShortVector.fromArray(S, xq, xo + c + 16)));
            a = pairSums(p).fma(FloatVector.broadcast(F, scale(w, b) * xd[k]), a);
        }
        return a.reduceLanes(ADD);
    }

    /** The 16 packed bytes of the Q4_0 block at byte b, widened to shorts (nibbles still packed). */
    private static ShortVector q4(MemorySegment w, long b) {
        return (ShortVector) ByteVector.fromMemorySegment(B16, w, b + 2, LE).convertShape(B2S, S, 0);
    }

    /**
     * Low nibbles (elements 0..15) times x0 plus high nibbles (16..31) times x1, the nibbles
     * unsigned in [0, 15]: each short is at most 2 * 15 * 127 = 3810 in magnitude.
     */
    private static ShortVector q4Products(ShortVector v, ShortVector x0, ShortVector x1) {
        return v.and((short) 15).mul(x0).add(v.lanewise(ASHR, 4).and((short) 15).mul(x1));
    }

    /**
     * The 8 pair sums of q4Products as f32: with shorts this small, (v + (v << 16)) >> 16 is the
     * high short plus the low one without overflow, one operation less than {@link #pairSums}.
     */
    private static FloatVector smallPairSums(ShortVector p) {
        IntVector v = p.reinterpretAsInts();
        return (FloatVector) v.add(v.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0);
    }

    /**
     * Two Q4_0 rows. The nibbles are multiplied unsigned; the -8 of each is subtracted per block
     * as 8 * d_w * d_x * sum(x quants) in the scalar c0, c1, from the block sums of
     * {@link Q8Activations#sums}.
     */
    private static void q4Rows2(MemorySegment w, long base, long rowBytes, int cols, short[] xq, int xo,
                                float[] xd, int[] xs, int so, float[] out, int o) {
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = a0;
        float c0 = 0;
        float c1 = 0;
        long b0 = base;
        long b1 = base + rowBytes;
        for (int c = 0, k = so; c < cols; c += 32, k++, b0 += 18, b1 += 18) {
            // Written out rather than through the helpers: C2 would not inline them all here, and
            // a vector returned from a call that is not inlined is boxed on the heap.
            ShortVector x0 = ShortVector.fromArray(S, xq, xo + c);
            ShortVector x1 = ShortVector.fromArray(S, xq, xo + c + 16);
            float dx = xd[k];
            float s = xs[k];
            float d = scale(w, b0) * dx;
            ShortVector v = (ShortVector) ByteVector.fromMemorySegment(B16, w, b0 + 2, LE).convertShape(B2S, S, 0);
            IntVector p = v.and((short) 15).mul(x0).add(v.lanewise(ASHR, 4).and((short) 15).mul(x1)).reinterpretAsInts();
            a0 = ((FloatVector) p.add(p.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0))
                    .fma(FloatVector.broadcast(F, d), a0);
            c0 += d * s;
            d = scale(w, b1) * dx;
            v = (ShortVector) ByteVector.fromMemorySegment(B16, w, b1 + 2, LE).convertShape(B2S, S, 0);
            p = v.and((short) 15).mul(x0).add(v.lanewise(ASHR, 4).and((short) 15).mul(x1)).reinterpretAsInts();
            a1 = ((FloatVector) p.add(p.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0))
                    .fma(FloatVector.broadcast(F, d), a1);
            c1 += d * s;
        }
        out[o] = a0.reduceLanes(ADD) - 8 * c0;
        out[o + 1] = a1.reduceLanes(ADD) - 8 * c1;
    }

    private static float q4Row(MemorySegment w, long base, int cols, short[] xq, int xo, float[] xd, int[] xs, int so) {
        FloatVector a = FloatVector.zero(F);
        float corr = 0;
        long b = base;
        for (int c = 0, k = so; c < cols; c += 32, k++, b += 18) {
            ShortVector p = q4Products(q4(w, b), ShortVector.fromArray(S, xq, xo + c),
                    ShortVector.fromArray(S, xq, xo + c + 16));
            float d = scale(w, b) * xd[k];
            a = smallPairSums(p).fma(FloatVector.broadcast(F, d), a);
            corr += d * xs[k];
        }
        return a.reduceLanes(ADD) - 8 * corr;
    }

    /**
     * Two Q4_G128 rows: {@link #q4Rows2}'s arithmetic part by part, in the same order, so a
     * Q4_G128 row gives the same float as its Q4_0 twin (each part its own block with the group's
     * scale). One flat loop over 32-weight parts, the group's scale read again for each: a nested
     * loop over the four parts makes C2 spill the accumulators. A copy rather than one kernel with
     * the block geometry as parameters: that one made Q4_0 about 8% slower (an address computed
     * per part instead of a pointer stepped by a constant; same machine, alternating runs).
     */
    private static void g128Rows2(MemorySegment w, long base, long rowBytes, int cols, short[] xq, int xo,
                                  float[] xd, int[] xs, int so, float[] out, int o) {
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = a0;
        float c0 = 0;
        float c1 = 0;
        for (int c = 0, k = so; c < cols; c += 32, k++) {
            long b0 = base + (c >>> 7) * 66L;
            long b1 = b0 + rowBytes;
            long part = 2 + ((c >>> 5) & 3) * 16L;
            ShortVector x0 = ShortVector.fromArray(S, xq, xo + c);
            ShortVector x1 = ShortVector.fromArray(S, xq, xo + c + 16);
            float dx = xd[k];
            float s = xs[k];
            float d = scale(w, b0) * dx;
            ShortVector v = (ShortVector) ByteVector.fromMemorySegment(B16, w, b0 + part, LE).convertShape(B2S, S, 0);
            IntVector p = v.and((short) 15).mul(x0).add(v.lanewise(ASHR, 4).and((short) 15).mul(x1)).reinterpretAsInts();
            a0 = ((FloatVector) p.add(p.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0))
                    .fma(FloatVector.broadcast(F, d), a0);
            c0 += d * s;
            d = scale(w, b1) * dx;
            v = (ShortVector) ByteVector.fromMemorySegment(B16, w, b1 + part, LE).convertShape(B2S, S, 0);
            p = v.and((short) 15).mul(x0).add(v.lanewise(ASHR, 4).and((short) 15).mul(x1)).reinterpretAsInts();
            a1 = ((FloatVector) p.add(p.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0))
                    .fma(FloatVector.broadcast(F, d), a1);
            c1 += d * s;
        }
        out[o] = a0.reduceLanes(ADD) - 8 * c0;
        out[o + 1] = a1.reduceLanes(ADD) - 8 * c1;
    }

    private static float g128Row(MemorySegment w, long base, int cols, short[] xq, int xo, float[] xd, int[] xs, int so) {
        FloatVector a = FloatVector.zero(F);
        float corr = 0;
        for (int c = 0, k = so; c < cols; c += 32, k++) {
            long b = base + (c >>> 7) * 66L;
            ShortVector p = q4Products(q4(w, b + ((c >>> 5) & 3) * 16L), ShortVector.fromArray(S, xq, xo + c),
                    ShortVector.fromArray(S, xq, xo + c + 16));
            float d = scale(w, b) * xd[k];
            a = smallPairSums(p).fma(FloatVector.broadcast(F, d), a);
            corr += d * xs[k];
        }
        return a.reduceLanes(ADD) - 8 * corr;
    }

    private static FloatVector q8f(MemorySegment w, long at) {
        return (FloatVector) ByteVector.fromMemorySegment(B, w, at, LE).convertShape(B2F, F, 0);
    }

    /**
     * Rows [r, r + n) of a Q8_0, Q4_0 or Q4_G128 matrix, columns [c0, c1) (whole blocks), dequantized to
     * tile[k * stride + (c - c0)] for row r + k.
     */
    static void fill(DType type, MemorySegment w, int cols, int r, int n, int c0, int c1, float[] tile, int off,
                     int stride) {
        if (KQuantDot.handles(type)) {
            KQuantDot.fill(type, w, cols, r, n, c0, c1, tile, off, stride);
            return;
        }
        if (type.rowGrouped()) {
            throw new IllegalArgumentException(type.tag() + " rows are not row-major: GroupDot.pairs dequantizes them");
        }
        long rowBytes = type.rowBytes(cols);
        int size = type.blockSize();
        for (int k = 0; k < n; k++) {
            int o = off + k * stride - c0;
            long row = (r + k) * rowBytes;
            for (int c = c0; c < c1; c += 32) {
                long b = row + (long) (c / size) * type.blockBytes();
                long q = b + type.partOffset(c % size / 32);
                FloatVector d = FloatVector.broadcast(F, scale(w, b));
                if (type == DType.Q8_0) {
                    for (int g = 0; g < 4; g++) {
                        q8f(w, q + 8 * g).mul(d).intoArray(tile, o + c + 8 * g);
                    }
                } else {
                    // Written out: through a helper that C2 does not inline here, every vector
                    // it returns was boxed (about 0.8 KB of garbage per block, measured).
                    for (int g = 0; g < 2; g++) {
                        IntVector v = (IntVector) ByteVector.fromMemorySegment(B, w, q + 8 * g, LE)
                                .convertShape(B2I, I, 0);
                        ((FloatVector) v.and(15).sub(8).convert(I2F, 0)).mul(d).intoArray(tile, o + c + 8 * g);
                        ((FloatVector) v.lanewise(LSHR, 4).and(15).sub(8).convert(I2F, 0)).mul(d)
                                .intoArray(tile, o + c + 16 + 8 * g);
                    }
                }
            }
        }
    }
}
