package qwen.service.backend.cpu;

import static jdk.incubator.vector.VectorOperators.ADD;
import static jdk.incubator.vector.VectorOperators.LSHL;
import static jdk.incubator.vector.VectorOperators.ASHR;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Decode dot products of f16 weight rows read straight from their segment, with one token's
 * activations in the pair layout of {@link VectorMatmul#pairLayout}: each int lane of a weight
 * load holds elements 2j (low half) and 2j + 1 (high half), converted with
 * {@link #even} and {@link #odd} and multiplied by xp[j] and xp[pairs + j]. Nothing is staged in a
 * tile, so the weights are read once, from memory, at the rate the conversion allows.
 *
 * <p>Only for widths that are a multiple of two vectors of pairs ({@link #fits}); the others go
 * through the tile path.
 */
final class F16Dot {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> I = F.withLanes(int.class);
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private F16Dot() {
    }

    /** Clears the three sign copies above the f32 exponent (bits 28..30). */
    private static final int CLEAR = 0x8FFFFFFF;
    /** The same, and the other half's bits shifted into the low mantissa (bits 0..12). */
    private static final int CLEAR_LOW = 0x8FFFE000;
    /**
     * The activations are multiplied by this and the sums by it again, which together with the
     * 2^-112 of {@link #even} restores the scale: the products are w x 2^-56, far from f32's
     * overflow for any activation and normal unless |w x| < 2^-70.
     */
    static final float X_SCALE = 0x1p56f;
    /** The sums are w x 2^-56: times 2^56 back. */
    private static final float UNSCALE = 0x1p56f;

    /**
     * The low halves (elements 2j) of a pair load, as f32 times 2^-112. Shifted to the top and
     * back down by three with the sign, an f16 lands in f32 position: sign at bit 31 (and copies
     * at 28..30, cleared), exponent at 23..27, mantissa at 13..22, which read as an f32 is the
     * value times 2^-112 exactly, for normal and subnormal halves alike. Three operations per
     * eight values where {@link TileDot#f16ToF32} needs ten; the 2^112 is folded into the
     * activations ({@link #X_SCALE}) and the result. Infinities and NaNs are not kept (they read
     * as finite values of magnitude 2^16 or more); weights are finite.
     */
    static FloatVector even(IntVector v) {
        return v.lanewise(LSHL, 16).lanewise(ASHR, 3).and(CLEAR).reinterpretAsFloats();
    }

    /** The high halves (elements 2j + 1) of a pair load, as f32 times 2^-112, as in {@link #even}. */
    static FloatVector odd(IntVector v) {
        return v.lanewise(ASHR, 3).and(CLEAR_LOW).reinterpretAsFloats();
    }

    /** xp[0 .. n) times {@link #X_SCALE}, in place: the activations {@link #rows} expects. */
    static float[] scale(float[] xp, int n) {
        int i = 0;
        for (; i < F.loopBound(n); i += F.length()) {
            FloatVector.fromArray(F, xp, i).mul(X_SCALE).intoArray(xp, i);
        }
        for (; i < n; i++) {
            xp[i] *= X_SCALE;
        }
        return xp;
    }

    /** Whether {@link #rows} handles a row of cols columns. */
    static boolean fits(int cols) {
        return cols % (2 * I.length()) == 0;
    }

    /** Rows [r0, r1) times token t, from activations in pair layout times {@link #X_SCALE}: out[t * rows + r] = row r . x_t. */
    static void rows(MemorySegment w, int rows, int cols, float[] xp, int t, float[] out, int r0, int r1) {
        int r = r0;
        for (; r + 4 <= r1; r += 4) {
            rows4(w, cols, r, xp, t, out, rows);
        }
        for (; r < r1; r++) {
            row(w, cols, r, xp, t, out, rows);
        }
    }

    /**
     * Four rows per pass: each activation load serves four rows, and four weight streams are read
     * at once (from memory on two threads, 35% faster than two rows per pass, measured).
     */
    private static void rows4(MemorySegment w, int cols, int r, float[] xp, int t, float[] out, int rows) {
        long rowBytes = 2L * cols;
        long b0 = r * rowBytes;
        long b1 = b0 + rowBytes;
        long b2 = b1 + rowBytes;
        long b3 = b2 + rowBytes;
        int pairs = cols / 2;
        int xe = t * cols;
        int xo = xe + pairs;
        FloatVector e0 = FloatVector.zero(F), o0 = e0, e1 = e0, o1 = e0, e2 = e0, o2 = e0, e3 = e0, o3 = e0;
        for (int j = 0; j < pairs; j += I.length()) {
            FloatVector xEven = FloatVector.fromArray(F, xp, xe + j);
            FloatVector xOdd = FloatVector.fromArray(F, xp, xo + j);
            IntVector v = IntVector.fromMemorySegment(I, w, b0 + 4L * j, LE);
            e0 = even(v).fma(xEven, e0);
            o0 = odd(v).fma(xOdd, o0);
            v = IntVector.fromMemorySegment(I, w, b1 + 4L * j, LE);
            e1 = even(v).fma(xEven, e1);
            o1 = odd(v).fma(xOdd, o1);
            v = IntVector.fromMemorySegment(I, w, b2 + 4L * j, LE);
            e2 = even(v).fma(xEven, e2);
            o2 = odd(v).fma(xOdd, o2);
            v = IntVector.fromMemorySegment(I, w, b3 + 4L * j, LE);
            e3 = even(v).fma(xEven, e3);
            o3 = odd(v).fma(xOdd, o3);
        }
        int o = t * rows + r;
        out[o] = e0.add(o0).reduceLanes(ADD) * UNSCALE;
        out[o + 1] = e1.add(o1).reduceLanes(ADD) * UNSCALE;
        out[o + 2] = e2.add(o2).reduceLanes(ADD) * UNSCALE;
        out[o + 3] = e3.add(o3).reduceLanes(ADD) * UNSCALE;
    }

    private static void row(MemorySegment w, int cols, int r, float[] xp, int t, float[] out, int rows) {
        long b = 2L * cols * r;
        int pairs = cols / 2;
        int xe = t * cols;
        FloatVector e = FloatVector.zero(F), o = e;
        for (int j = 0; j < pairs; j += I.length()) {
            IntVector v = IntVector.fromMemorySegment(I, w, b + 4L * j, LE);
            e = even(v).fma(FloatVector.fromArray(F, xp, xe + j), e);
            o = odd(v).fma(FloatVector.fromArray(F, xp, xe + pairs + j), o);
        }
        out[t * rows + r] = e.add(o).reduceLanes(ADD) * UNSCALE;
    }
}
