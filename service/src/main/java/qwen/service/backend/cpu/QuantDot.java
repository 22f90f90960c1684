package qwen.service.backend.cpu;

import static jdk.incubator.vector.VectorOperators.ADD;
import static jdk.incubator.vector.VectorOperators.B2F;
import static jdk.incubator.vector.VectorOperators.B2I;
import static jdk.incubator.vector.VectorOperators.I2F;
import static jdk.incubator.vector.VectorOperators.LSHR;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorSpecies;
import qwen.service.model.DType;

/**
 * Dot products of Q8_0 and Q4_0 weight rows, read block by block straight from their segment
 * (never dequantized to a copy), with f32 activations. Each 8-byte group of quants is widened to
 * eight f32 lanes and multiplied by the activations; a block's partial sums are then scaled by
 * its f16 scale with one FMA, so a row costs one FMA per 8 weights plus one per block.
 *
 * <p>Q4_0 stores q + 8 in [0, 15]: the kernels multiply the unsigned nibbles and subtract
 * 8 * d * sum(x over the block) per block as a scalar, from block sums of x computed once per
 * call ({@link #blockSums}), instead of subtracting 8 from every lane.
 *
 * <p>The kernels use 256-bit vectors (eight f32 lanes, eight bytes per load) whatever the
 * preferred width, so that a Q-block of 32 is four loads.
 */
final class QuantDot {

    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final VectorSpecies<Byte> B = ByteVector.SPECIES_64;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfShort LE_SHORT =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);

    private QuantDot() {
    }

    /** Sums of x[32 b .. 32 b + 31] for the blocks of a cols-wide row of token t. */
    static float[] blockSums(float[] x, int t, int cols, float[] into) {
        int blocks = cols / 32;
        float[] s = into.length >= blocks ? into : new float[blocks];
        int base = t * cols;
        for (int b = 0; b < blocks; b++) {
            s[b] = FloatVector.fromArray(F, x, base + 32 * b).add(FloatVector.fromArray(F, x, base + 32 * b + 8))
                    .add(FloatVector.fromArray(F, x, base + 32 * b + 16))
                    .add(FloatVector.fromArray(F, x, base + 32 * b + 24)).reduceLanes(ADD);
        }
        return s;
    }

    /** Rows [r0, r1) of a Q8_0 or Q4_0 matrix times token t: out[t * rows + r]. */
    static void rows(DType type, MemorySegment w, int rows, int cols, float[] x, int t, float[] xsum,
                     float[] out, int r0, int r1) {
        long rowBytes = type.rowBytes(cols);
        int xo = t * cols;
        int o = t * rows;
        int r = r0;
        if (type == DType.Q8_0) {
            for (; r + 4 <= r1; r += 4) {
                q8Rows4(w, r * rowBytes, rowBytes, cols, x, xo, out, o + r);
            }
            for (; r < r1; r++) {
                out[o + r] = q8Row(w, r * rowBytes, cols, x, xo);
            }
        } else {
            for (; r + 4 <= r1; r += 4) {
                q4Rows4(w, r * rowBytes, rowBytes, cols, x, xo, xsum, out, o + r);
            }
            for (; r < r1; r++) {
                out[o + r] = q4Row(w, r * rowBytes, cols, x, xo, xsum);
            }
        }
    }

    private static FloatVector q8(MemorySegment w, long at) {
        return (FloatVector) ByteVector.fromMemorySegment(B, w, at, LE).convertShape(B2F, F, 0);
    }

    private static float scale(MemorySegment w, long at) {
        return Float.float16ToFloat(w.get(LE_SHORT, at));
    }

    /** Four Q8_0 rows from byte offset base, rowBytes apart, times x[xo ..]. */
    private static void q8Rows4(MemorySegment w, long base, long rowBytes, int cols, float[] x, int xo,
                                float[] out, int o) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        long b0 = base;
        long b1 = b0 + rowBytes;
        long b2 = b1 + rowBytes;
        long b3 = b2 + rowBytes;
        for (int c = 0; c < cols; c += 32, b0 += 34, b1 += 34, b2 += 34, b3 += 34) {
            FloatVector x0 = FloatVector.fromArray(F, x, xo + c);
            FloatVector x1 = FloatVector.fromArray(F, x, xo + c + 8);
            FloatVector x2 = FloatVector.fromArray(F, x, xo + c + 16);
            FloatVector x3 = FloatVector.fromArray(F, x, xo + c + 24);
            a0 = q8Block(w, b0, x0, x1, x2, x3, a0);
            a1 = q8Block(w, b1, x0, x1, x2, x3, a1);
            a2 = q8Block(w, b2, x0, x1, x2, x3, a2);
            a3 = q8Block(w, b3, x0, x1, x2, x3, a3);
        }
        out[o] = a0.reduceLanes(ADD);
        out[o + 1] = a1.reduceLanes(ADD);
        out[o + 2] = a2.reduceLanes(ADD);
        out[o + 3] = a3.reduceLanes(ADD);
    }

    /** acc + d * (q . x) for the Q8_0 block at byte b; two short chains rather than one long one. */
    private static FloatVector q8Block(MemorySegment w, long b, FloatVector x0, FloatVector x1,
                                       FloatVector x2, FloatVector x3, FloatVector acc) {
        FloatVector s = q8(w, b + 2).mul(x0);
        FloatVector u = q8(w, b + 18).mul(x2);
        s = q8(w, b + 10).fma(x1, s);
        u = q8(w, b + 26).fma(x3, u);
        return s.add(u).fma(FloatVector.broadcast(F, scale(w, b)), acc);
    }

    private static float q8Row(MemorySegment w, long base, int cols, float[] x, int xo) {
        FloatVector acc = FloatVector.zero(F);
        long b = base;
        for (int c = 0; c < cols; c += 32, b += 34) {
            acc = q8Block(w, b, FloatVector.fromArray(F, x, xo + c), FloatVector.fromArray(F, x, xo + c + 8),
                    FloatVector.fromArray(F, x, xo + c + 16), FloatVector.fromArray(F, x, xo + c + 24), acc);
        }
        return acc.reduceLanes(ADD);
    }

    /** Four Q4_0 rows; the -8 offsets are summed in c0..c3 as 8 * d * sum(x) per block. */
    private static void q4Rows4(MemorySegment w, long base, long rowBytes, int cols, float[] x, int xo,
                                float[] xsum, float[] out, int o) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        float c0 = 0, c1 = 0, c2 = 0, c3 = 0;
        long b0 = base;
        long b1 = b0 + rowBytes;
        long b2 = b1 + rowBytes;
        long b3 = b2 + rowBytes;
        for (int c = 0, blk = 0; c < cols; c += 32, blk++, b0 += 18, b1 += 18, b2 += 18, b3 += 18) {
            FloatVector x0 = FloatVector.fromArray(F, x, xo + c);
            FloatVector x1 = FloatVector.fromArray(F, x, xo + c + 8);
            FloatVector x2 = FloatVector.fromArray(F, x, xo + c + 16);
            FloatVector x3 = FloatVector.fromArray(F, x, xo + c + 24);
            float s = xsum[blk];
            float d = scale(w, b0);
            a0 = q4Block(w, b0, d, x0, x1, x2, x3, a0);
            c0 += d * s;
            d = scale(w, b1);
            a1 = q4Block(w, b1, d, x0, x1, x2, x3, a1);
            c1 += d * s;
            d = scale(w, b2);
            a2 = q4Block(w, b2, d, x0, x1, x2, x3, a2);
            c2 += d * s;
            d = scale(w, b3);
            a3 = q4Block(w, b3, d, x0, x1, x2, x3, a3);
            c3 += d * s;
        }
        out[o] = a0.reduceLanes(ADD) - 8 * c0;
        out[o + 1] = a1.reduceLanes(ADD) - 8 * c1;
        out[o + 2] = a2.reduceLanes(ADD) - 8 * c2;
        out[o + 3] = a3.reduceLanes(ADD) - 8 * c3;
    }

    /** acc + d * (nibbles . x) for the Q4_0 block at byte b (quants at b + 2). */
    private static FloatVector q4Block(MemorySegment w, long b, float d, FloatVector x0, FloatVector x1,
                                       FloatVector x2, FloatVector x3, FloatVector acc) {
        IntVector v = (IntVector) ByteVector.fromMemorySegment(B, w, b + 2, LE).convertShape(B2I, I, 0);
        IntVector u = (IntVector) ByteVector.fromMemorySegment(B, w, b + 10, LE).convertShape(B2I, I, 0);
        FloatVector s = nibbles(v.and(15)).mul(x0);
        FloatVector t = nibbles(v.lanewise(LSHR, 4).and(15)).mul(x2);
        s = nibbles(u.and(15)).fma(x1, s);
        t = nibbles(u.lanewise(LSHR, 4).and(15)).fma(x3, t);
        return s.add(t).fma(FloatVector.broadcast(F, d), acc);
    }

    private static FloatVector nibbles(IntVector q) {
        return (FloatVector) q.convert(I2F, 0);
    }

    private static float q4Row(MemorySegment w, long base, int cols, float[] x, int xo, float[] xsum) {
        FloatVector acc = FloatVector.zero(F);
        float corr = 0;
        long b = base;
        for (int c = 0, blk = 0; c < cols; c += 32, blk++, b += 18) {
            float d = scale(w, b);
            acc = q4Block(w, b, d, FloatVector.fromArray(F, x, xo + c), FloatVector.fromArray(F, x, xo + c + 8),
                    FloatVector.fromArray(F, x, xo + c + 16), FloatVector.fromArray(F, x, xo + c + 24), acc);
            corr += d * xsum[blk];
        }
        return acc.reduceLanes(ADD) - 8 * corr;
    }

    /**
     * Rows [r, r + n) of a Q8_0 or Q4_0 matrix, columns [c0, c1) (whole blocks), dequantized to
     * tile[k * stride + (c - c0)] for row r + k.
     */
    static void fill(DType type, MemorySegment w, int cols, int r, int n, int c0, int c1, float[] tile, int off,
                     int stride) {
        long rowBytes = type.rowBytes(cols);
        for (int k = 0; k < n; k++) {
            int o = off + k * stride - c0;
            long b = (r + k) * rowBytes + (long) (c0 / 32) * type.blockBytes();
            for (int c = c0; c < c1; c += 32, b += type.blockBytes()) {
                FloatVector d = FloatVector.broadcast(F, scale(w, b));
                if (type == DType.Q8_0) {
                    for (int g = 0; g < 4; g++) {
                        q8(w, b + 2 + 8 * g).mul(d).intoArray(tile, o + c + 8 * g);
                    }
                } else {
                    for (int g = 0; g < 2; g++) {
                        IntVector v = (IntVector) ByteVector.fromMemorySegment(B, w, b + 2 + 8 * g, LE)
                                .convertShape(B2I, I, 0);
                        nibbles(v.and(15).sub(8)).mul(d).intoArray(tile, o + c + 8 * g);
                        nibbles(v.lanewise(LSHR, 4).and(15).sub(8)).mul(d).intoArray(tile, o + c + 16 + 8 * g);
                    }
                }
            }
        }
    }
}
