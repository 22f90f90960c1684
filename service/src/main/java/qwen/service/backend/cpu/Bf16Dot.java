package qwen.service.backend.cpu;

import static jdk.incubator.vector.VectorOperators.ADD;
import static jdk.incubator.vector.VectorOperators.LSHL;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Dot products of bf16 weight rows, read straight from their {@link MemorySegment}, with f32
 * activations in the pair layout of {@link VectorMatmul#pairLayout}: each int lane of a weight
 * load holds two bf16 values, element 2j in its low half and 2j + 1 in its high half, so
 * {@code bits << 16} is element 2j as an f32 and {@code bits & 0xFFFF0000} is element 2j + 1;
 * they multiply x[2j] (at xp[j]) and x[2j + 1] (at xp[pairs + j]).
 *
 * <p>The vector loops cover pairs [j0, j1) with j1 at most {@link #vectorPairs}; {@link #tail}
 * adds the rest. Kernels either store their sums ({@code add == false}) or add them to out.
 */
final class Bf16Dot {

    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final VectorSpecies<Integer> I = F.withLanes(int.class);
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfShort LE_SHORT =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);
    private static final int HIGH = 0xFFFF0000;

    private Bf16Dot() {
    }

    /** Pairs the vector loops cover: the whole pairs rounded down to the vector length. */
    static int vectorPairs(int cols) {
        return I.loopBound(cols / 2);
    }

    /** Four rows [r, r + 4) times one token: out[t * rows + r + k] (=|+=) row r + k . x_t. */
    static void rows4x1(MemorySegment w, int cols, int r, float[] xp, int t, float[] out, int rows,
                        int j0, int j1, boolean add) {
        long rowBytes = 2L * cols;
        long b0 = r * rowBytes;
        long b1 = b0 + rowBytes;
        long b2 = b1 + rowBytes;
        long b3 = b2 + rowBytes;
        int xe = t * cols;
        int xo = xe + cols / 2;
        FloatVector e0 = FloatVector.zero(F), e1 = e0, e2 = e0, e3 = e0;
        FloatVector o0 = e0, o1 = e0, o2 = e0, o3 = e0;
        for (int j = j0; j < j1; j += I.length()) {
            FloatVector xEven = FloatVector.fromArray(F, xp, xe + j);
            FloatVector xOdd = FloatVector.fromArray(F, xp, xo + j);
            long at = 4L * j;
            IntVector v = IntVector.fromMemorySegment(I, w, b0 + at, LE);
            e0 = even(v).fma(xEven, e0);
            o0 = odd(v).fma(xOdd, o0);
            v = IntVector.fromMemorySegment(I, w, b1 + at, LE);
            e1 = even(v).fma(xEven, e1);
            o1 = odd(v).fma(xOdd, o1);
            v = IntVector.fromMemorySegment(I, w, b2 + at, LE);
            e2 = even(v).fma(xEven, e2);
            o2 = odd(v).fma(xOdd, o2);
            v = IntVector.fromMemorySegment(I, w, b3 + at, LE);
            e3 = even(v).fma(xEven, e3);
            o3 = odd(v).fma(xOdd, o3);
        }
        int o = t * rows + r;
        put(out, o, e0.add(o0).reduceLanes(ADD), add);
        put(out, o + 1, e1.add(o1).reduceLanes(ADD), add);
        put(out, o + 2, e2.add(o2).reduceLanes(ADD), add);
        put(out, o + 3, e3.add(o3).reduceLanes(ADD), add);
    }

    /**
     * Four rows [r, r + 4) times two tokens t, t + 1: each weight load feeds four FMAs, the
     * prefill kernel.
     */
    static void rows4x2(MemorySegment w, int cols, int r, float[] xp, int t, float[] out, int rows,
                        int j0, int j1, boolean add) {
        long rowBytes = 2L * cols;
        long b0 = r * rowBytes;
        int pairs = cols / 2;
        int xe0 = t * cols;
        int xe1 = xe0 + cols;
        FloatVector a00 = FloatVector.zero(F), a01 = a00, a10 = a00, a11 = a00;
        FloatVector a20 = a00, a21 = a00, a30 = a00, a31 = a00;
        for (int j = j0; j < j1; j += I.length()) {
            FloatVector xe0v = FloatVector.fromArray(F, xp, xe0 + j);
            FloatVector xo0v = FloatVector.fromArray(F, xp, xe0 + pairs + j);
            FloatVector xe1v = FloatVector.fromArray(F, xp, xe1 + j);
            FloatVector xo1v = FloatVector.fromArray(F, xp, xe1 + pairs + j);
            long at = b0 + 4L * j;
            IntVector v = IntVector.fromMemorySegment(I, w, at, LE);
            FloatVector we = even(v);
            FloatVector wo = odd(v);
            a00 = wo.fma(xo0v, we.fma(xe0v, a00));
            a01 = wo.fma(xo1v, we.fma(xe1v, a01));
            v = IntVector.fromMemorySegment(I, w, at + rowBytes, LE);
            we = even(v);
            wo = odd(v);
            a10 = wo.fma(xo0v, we.fma(xe0v, a10));
            a11 = wo.fma(xo1v, we.fma(xe1v, a11));
            v = IntVector.fromMemorySegment(I, w, at + 2 * rowBytes, LE);
            we = even(v);
            wo = odd(v);
            a20 = wo.fma(xo0v, we.fma(xe0v, a20));
            a21 = wo.fma(xo1v, we.fma(xe1v, a21));
            v = IntVector.fromMemorySegment(I, w, at + 3 * rowBytes, LE);
            we = even(v);
            wo = odd(v);
            a30 = wo.fma(xo0v, we.fma(xe0v, a30));
            a31 = wo.fma(xo1v, we.fma(xe1v, a31));
        }
        int o0 = t * rows + r;
        int o1 = o0 + rows;
        put(out, o0, a00.reduceLanes(ADD), add);
        put(out, o1, a01.reduceLanes(ADD), add);
        put(out, o0 + 1, a10.reduceLanes(ADD), add);
        put(out, o1 + 1, a11.reduceLanes(ADD), add);
        put(out, o0 + 2, a20.reduceLanes(ADD), add);
        put(out, o1 + 2, a21.reduceLanes(ADD), add);
        put(out, o0 + 3, a30.reduceLanes(ADD), add);
        put(out, o1 + 3, a31.reduceLanes(ADD), add);
    }

    /** One row times one token, for the rows left over from blocks of four. */
    static void rows1x1(MemorySegment w, int cols, int r, float[] xp, int t, float[] out, int rows,
                        int j0, int j1, boolean add) {
        long b = 2L * cols * r;
        int xe = t * cols;
        int xo = xe + cols / 2;
        FloatVector e = FloatVector.zero(F);
        FloatVector o = e;
        for (int j = j0; j < j1; j += I.length()) {
            IntVector v = IntVector.fromMemorySegment(I, w, b + 4L * j, LE);
            e = even(v).fma(FloatVector.fromArray(F, xp, xe + j), e);
            o = odd(v).fma(FloatVector.fromArray(F, xp, xo + j), o);
        }
        put(out, t * rows + r, e.add(o).reduceLanes(ADD), add);
    }

    /** Adds, for rows [r0, r1) and tokens [t0, t1), the columns the vector loops skip. */
    static void tail(MemorySegment w, int cols, int r0, int r1, float[] xp, int t0, int t1,
                     float[] out, int rows) {
        int pairs = cols / 2;
        int from = vectorPairs(cols);
        if (from == pairs && cols % 2 == 0) {
            return;
        }
        for (int r = r0; r < r1; r++) {
            long b = 2L * cols * r;
            for (int t = t0; t < t1; t++) {
                int xe = t * cols;
                float sum = 0;
                for (int j = from; j < pairs; j++) {
                    sum += element(w, b, 2 * j) * xp[xe + j] + element(w, b, 2 * j + 1) * xp[xe + pairs + j];
                }
                if (cols % 2 != 0) {
                    sum += element(w, b, cols - 1) * xp[xe + cols - 1];
                }
                out[t * rows + r] += sum;
            }
        }
    }

    private static float element(MemorySegment w, long rowBase, int col) {
        return Float.intBitsToFloat((w.get(LE_SHORT, rowBase + 2L * col) & 0xFFFF) << 16);
    }

    private static FloatVector even(IntVector pairs) {
        return pairs.lanewise(LSHL, 16).reinterpretAsFloats();
    }

    private static FloatVector odd(IntVector pairs) {
        return pairs.and(HIGH).reinterpretAsFloats();
    }

    /**
     * Takes the reduced sum, not the vector: put is not always inlined, and a vector passed to a
     * call that is not inlined is boxed (8 objects per 4 x 2 tile, measured).
     */
    private static void put(float[] out, int at, float s, boolean add) {
        out[at] = add ? out[at] + s : s;
    }
}
