package qwen.service.backend.cpu;

import static jdk.incubator.vector.VectorOperators.ADD;
import static jdk.incubator.vector.VectorOperators.AND;
import static jdk.incubator.vector.VectorOperators.EQ;
import static jdk.incubator.vector.VectorOperators.LSHL;
import static jdk.incubator.vector.VectorOperators.LSHR;
import static jdk.incubator.vector.VectorOperators.OR;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

/**
 * The matmul path for F32 and F16 weights: a block of up to four rows is first converted to an
 * f32 tile on the heap ({@link #fillF32}, {@link #fillF16}), then multiplied by every token
 * from the tile. F16 rows are stored in the pair layout of {@link VectorMatmul#pairLayout} (the
 * activations are permuted the same way, and a dot product does not care about the order of its
 * terms); F32 rows keep their order.
 */
final class TileDot {

    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> I = F.withLanes(int.class);
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfFloat LE_FLOAT =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(LE);
    private static final ValueLayout.OfShort LE_SHORT =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);

    private TileDot() {
    }

    /** Copies rows [r, r + n) of an F32 matrix to tile[0 .. n * cols). */
    static void fillF32(MemorySegment w, int cols, int r, int n, float[] tile) {
        MemorySegment.copy(w, LE_FLOAT, 4L * cols * r, tile, 0, n * cols);
    }

    /** Converts rows [r, r + n) of an F16 matrix to tile[0 .. n * cols), in pair layout. */
    static void fillF16(MemorySegment w, int cols, int r, int n, float[] tile) {
        int pairs = cols / 2;
        int bound = I.loopBound(pairs);
        for (int k = 0; k < n; k++) {
            long base = 2L * cols * (r + k);
            int o = k * cols;
            int j = 0;
            for (; j < bound; j += I.length()) {
                IntVector v = IntVector.fromMemorySegment(I, w, base + 4L * j, LE);
                f16ToF32(v.and(0xFFFF)).intoArray(tile, o + j);
                f16ToF32(v.lanewise(LSHR, 16)).intoArray(tile, o + pairs + j);
            }
            for (; j < pairs; j++) {
                tile[o + j] = Float.float16ToFloat(w.get(LE_SHORT, base + 4L * j));
                tile[o + pairs + j] = Float.float16ToFloat(w.get(LE_SHORT, base + 4L * j + 2));
            }
            if (cols % 2 != 0) {
                tile[o + cols - 1] = Float.float16ToFloat(w.get(LE_SHORT, base + 2L * (cols - 1)));
            }
        }
    }

    /**
     * IEEE binary16 bits (in the low 16 bits of each lane) to f32, exactly like
     * {@link Float#float16ToFloat}: the exponent and mantissa shifted into f32 position are
     * scaled by 2^112 (the bias difference, which also normalises subnormals), then infinities
     * and NaNs get the all-ones exponent back and the sign is copied.
     */
    static FloatVector f16ToF32(IntVector h) {
        IntVector magnitude = h.and(0x7FFF).lanewise(LSHL, 13);
        IntVector bits = magnitude.reinterpretAsFloats().mul(0x1p112f).reinterpretAsInts();
        VectorMask<Integer> special = h.lanewise(AND, 0x7C00).compare(EQ, 0x7C00);
        bits = bits.lanewise(OR, 0x7F800000, special);
        return bits.or(h.and(0x8000).lanewise(LSHL, 16)).reinterpretAsFloats();
    }

    /** Four tile rows times two tokens: out[(t + u) * rows + r + k] = tile row k . x_{t+u}. */
    static void rows4x2(float[] tile, int cols, float[] x, int t, float[] out, int rows, int r) {
        int x0 = t * cols;
        int x1 = x0 + cols;
        FloatVector a00 = FloatVector.zero(F), a01 = a00, a10 = a00, a11 = a00;
        FloatVector a20 = a00, a21 = a00, a30 = a00, a31 = a00;
        int bound = F.loopBound(cols);
        int i = 0;
        for (; i < bound; i += F.length()) {
            FloatVector v0 = FloatVector.fromArray(F, x, x0 + i);
            FloatVector v1 = FloatVector.fromArray(F, x, x1 + i);
            FloatVector w = FloatVector.fromArray(F, tile, i);
            a00 = w.fma(v0, a00);
            a01 = w.fma(v1, a01);
            w = FloatVector.fromArray(F, tile, cols + i);
            a10 = w.fma(v0, a10);
            a11 = w.fma(v1, a11);
            w = FloatVector.fromArray(F, tile, 2 * cols + i);
            a20 = w.fma(v0, a20);
            a21 = w.fma(v1, a21);
            w = FloatVector.fromArray(F, tile, 3 * cols + i);
            a30 = w.fma(v0, a30);
            a31 = w.fma(v1, a31);
        }
        int o0 = t * rows + r;
        int o1 = o0 + rows;
        out[o0] = a00.reduceLanes(ADD) + tail(tile, 0, x, x0, i, cols);
        out[o1] = a01.reduceLanes(ADD) + tail(tile, 0, x, x1, i, cols);
        out[o0 + 1] = a10.reduceLanes(ADD) + tail(tile, cols, x, x0, i, cols);
        out[o1 + 1] = a11.reduceLanes(ADD) + tail(tile, cols, x, x1, i, cols);
        out[o0 + 2] = a20.reduceLanes(ADD) + tail(tile, 2 * cols, x, x0, i, cols);
        out[o1 + 2] = a21.reduceLanes(ADD) + tail(tile, 2 * cols, x, x1, i, cols);
        out[o0 + 3] = a30.reduceLanes(ADD) + tail(tile, 3 * cols, x, x0, i, cols);
        out[o1 + 3] = a31.reduceLanes(ADD) + tail(tile, 3 * cols, x, x1, i, cols);
    }

    /** One tile row (at tile[k * cols]) times one token. */
    static void rows1x1(float[] tile, int k, int cols, float[] x, int t, float[] out, int rows, int r) {
        int w0 = k * cols;
        int x0 = t * cols;
        FloatVector a = FloatVector.zero(F);
        FloatVector b = a;
        int i = 0;
        for (; i < F.loopBound(cols) - F.length(); i += 2 * F.length()) {
            a = FloatVector.fromArray(F, tile, w0 + i).fma(FloatVector.fromArray(F, x, x0 + i), a);
            b = FloatVector.fromArray(F, tile, w0 + i + F.length())
                    .fma(FloatVector.fromArray(F, x, x0 + i + F.length()), b);
        }
        for (; i < F.loopBound(cols); i += F.length()) {
            a = FloatVector.fromArray(F, tile, w0 + i).fma(FloatVector.fromArray(F, x, x0 + i), a);
        }
        out[t * rows + r] = a.add(b).reduceLanes(ADD) + tail(tile, w0, x, x0, i, cols);
    }

    /** Four F32 rows [r, r + 4) times one token, read straight from the segment (decode). */
    static void f32Rows4x1(MemorySegment w, int cols, int r, float[] x, int t, float[] out, int rows) {
        long rowBytes = 4L * cols;
        long b0 = r * rowBytes;
        int x0 = t * cols;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        int bound = F.loopBound(cols);
        int i = 0;
        for (; i < bound; i += F.length()) {
            FloatVector v = FloatVector.fromArray(F, x, x0 + i);
            long at = b0 + 4L * i;
            a0 = FloatVector.fromMemorySegment(F, w, at, LE).fma(v, a0);
            a1 = FloatVector.fromMemorySegment(F, w, at + rowBytes, LE).fma(v, a1);
            a2 = FloatVector.fromMemorySegment(F, w, at + 2 * rowBytes, LE).fma(v, a2);
            a3 = FloatVector.fromMemorySegment(F, w, at + 3 * rowBytes, LE).fma(v, a3);
        }
        int o = t * rows + r;
        out[o] = a0.reduceLanes(ADD) + f32Tail(w, b0, x, x0, i, cols);
        out[o + 1] = a1.reduceLanes(ADD) + f32Tail(w, b0 + rowBytes, x, x0, i, cols);
        out[o + 2] = a2.reduceLanes(ADD) + f32Tail(w, b0 + 2 * rowBytes, x, x0, i, cols);
        out[o + 3] = a3.reduceLanes(ADD) + f32Tail(w, b0 + 3 * rowBytes, x, x0, i, cols);
    }

    private static float f32Tail(MemorySegment w, long rowBase, float[] x, int x0, int from, int cols) {
        float s = 0;
        for (int c = from; c < cols; c++) {
            s += w.get(LE_FLOAT, rowBase + 4L * c) * x[x0 + c];
        }
        return s;
    }

    private static float tail(float[] tile, int w0, float[] x, int x0, int from, int cols) {
        float s = 0;
        for (int i = from; i < cols; i++) {
            s += tile[w0 + i] * x[x0 + i];
        }
        return s;
    }
}
