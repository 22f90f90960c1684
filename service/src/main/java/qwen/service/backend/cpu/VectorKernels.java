package qwen.service.backend.cpu;

import static jdk.incubator.vector.VectorOperators.ADD;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import qwen.service.kv.LayerKv;
import qwen.service.model.Matrix;
import qwen.service.model.QuantBlocks;

/**
 * The serving kernels: the Java Vector API at the platform's preferred width (any width; tails
 * are handled) on a fixed pool of threads. matmul and attention use every thread; the
 * element-wise kernels split only when there are several token rows, because for one row they
 * take about a microsecond, less than a hand-off to another core.
 *
 * <p>One instance serves one forward pass at a time (calls must not overlap); {@link #close}
 * stops its threads.
 */
public final class VectorKernels implements Kernels, AutoCloseable {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final ValueLayout.OfShort LE_SHORT =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat LE_FLOAT =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Elements below which an element-wise kernel stays on the calling thread. */
    private static final int SPLIT_ELEMENTS = 1 << 14;

    private final WorkerPool pool;
    private final VectorMatmul matmul;
    private final VectorAttention attention;

    /** @param threads worker threads including the caller, usually the number of cores */
    public VectorKernels(int threads) {
        this.pool = new WorkerPool(threads);
        this.matmul = new VectorMatmul(pool);
        this.attention = new VectorAttention(pool);
    }

    /** Threads that run matmul and attention, including the calling thread. */
    public int threads() {
        return pool.threads();
    }

    @Override
    public void matmul(Matrix w, float[] x, int tokens, float[] out) {
        matmul.matmul(w, x, tokens, out);
    }

    @Override
    public void rmsnorm(float[] x, int tokens, float[] weight, float eps, float[] out) {
        int n = weight.length;
        rowsInParallel(tokens, n, (t0, t1) -> {
            for (int t = t0; t < t1; t++) {
                rmsnormRow(x, t * n, weight, eps, out);
            }
        });
    }

    private static void rmsnormRow(float[] x, int at, float[] weight, float eps, float[] out) {
        int n = weight.length;
        int bound = F.loopBound(n);
        FloatVector squares = FloatVector.zero(F);
        int i = 0;
        for (; i < bound; i += F.length()) {
            FloatVector v = FloatVector.fromArray(F, x, at + i);
            squares = v.fma(v, squares);
        }
        float sum = squares.reduceLanes(ADD);
        for (; i < n; i++) {
            sum += x[at + i] * x[at + i];
        }
        float scale = (float) (1.0 / Math.sqrt(sum / n + eps));
        i = 0;
        for (; i < bound; i += F.length()) {
            FloatVector.fromArray(F, x, at + i).mul(scale).mul(FloatVector.fromArray(F, weight, i))
                    .intoArray(out, at + i);
        }
        for (; i < n; i++) {
            out[at + i] = x[at + i] * scale * weight[i];
        }
    }

    /** One row of 1..2048-odd columns per token: a plain loop converts it in about a microsecond. */
    @Override
    public void embed(Matrix wte, int id, float[] out, int offset) {
        if (id < 0 || id >= wte.rows()) {
            throw new IllegalArgumentException(wte.name() + ": token id " + id + " outside [0, " + wte.rows() + ")");
        }
        int cols = wte.cols();
        MemorySegment data = wte.data();
        long row = (long) id * cols;
        switch (wte.dtype()) {
            case F32 -> MemorySegment.copy(data, LE_FLOAT, 4 * row, out, offset, cols);
            case BF16 -> {
                for (int i = 0; i < cols; i++) {
                    out[offset + i] = Float.intBitsToFloat((data.getAtIndex(LE_SHORT, row + i) & 0xFFFF) << 16);
                }
            }
            case F16 -> {
                for (int i = 0; i < cols; i++) {
                    out[offset + i] = Float.float16ToFloat(data.getAtIndex(LE_SHORT, row + i));
                }
            }
            case Q8_0, Q4_0, Q5_0, Q4_1, Q5_1, Q4_K, Q5_K, Q6_K, Q4_G128, Q4_0_R16, Q8_0_R16 -> QuantBlocks.row(wte, id, out, offset);
        }
    }

    @Override
    public void addBias(float[] x, int tokens, float[] bias) {
        int n = bias.length;
        for (int t = 0; t < tokens; t++) {
            addRange(x, t * n, bias, 0, n);
        }
    }

    @Override
    public void rope(float[] x, int tokens, int rowStride, int colOffset, int numHeads, int headDim,
                     float[] cos, float[] sin) {
        int half = headDim / 2;
        rowsInParallel(tokens, numHeads * headDim, (t0, t1) -> {
            for (int t = t0; t < t1; t++) {
                for (int h = 0; h < numHeads; h++) {
                    ropeHead(x, t * rowStride + colOffset + h * headDim, half, cos, sin, t * half);
                }
            }
        });
    }

    private static void ropeHead(float[] x, int at, int half, float[] cos, float[] sin, int cs) {
        int bound = F.loopBound(half);
        int i = 0;
        for (; i < bound; i += F.length()) {
            FloatVector a = FloatVector.fromArray(F, x, at + i);
            FloatVector b = FloatVector.fromArray(F, x, at + half + i);
            FloatVector c = FloatVector.fromArray(F, cos, cs + i);
            FloatVector s = FloatVector.fromArray(F, sin, cs + i);
            a.mul(c).sub(b.mul(s)).intoArray(x, at + i);
            b.mul(c).add(a.mul(s)).intoArray(x, at + half + i);
        }
        for (; i < half; i++) {
            float a = x[at + i];
            float b = x[at + half + i];
            x[at + i] = a * cos[cs + i] - b * sin[cs + i];
            x[at + half + i] = b * cos[cs + i] + a * sin[cs + i];
        }
    }

    @Override
    public void attention(float[] q, float[] out, int rowOffset, int tokens, int startPos, LayerKv kv,
                          int numHeads, int headDim) {
        attention.attention(q, out, rowOffset, tokens, startPos, kv, numHeads, headDim);
    }

    /**
     * e^x from {@link VectorMath}: the same bits in the vector lanes and in the tail, so an element's
     * value does not depend on where a thread's range ends (with lanewise(EXP) and Math.exp it did,
     * in the last place), nor on whether the loop runs compiled.
     */
    @Override
    public void siluMul(float[] up, float[] gate, int n) {
        rowsInParallel(n, 1, (from, to) -> {
            int bound = from + F.loopBound(to - from);
            int i = from;
            for (; i < bound; i += F.length()) {
                FloatVector g = FloatVector.fromArray(F, gate, i);
                FloatVector silu = g.div(VectorMath.exp(g.neg()).add(1f));
                FloatVector.fromArray(F, up, i).mul(silu).intoArray(up, i);
            }
            for (; i < to; i++) {
                up[i] = up[i] * (gate[i] / (1f + VectorMath.exp(-gate[i])));
            }
        });
    }

    @Override
    public void add(float[] x, float[] y, int n) {
        addRange(x, 0, y, 0, n);
    }

    private static void addRange(float[] x, int xAt, float[] y, int yAt, int n) {
        int bound = F.loopBound(n);
        int i = 0;
        for (; i < bound; i += F.length()) {
            FloatVector.fromArray(F, x, xAt + i).add(FloatVector.fromArray(F, y, yAt + i)).intoArray(x, xAt + i);
        }
        for (; i < n; i++) {
            x[xAt + i] += y[yAt + i];
        }
    }

    @FunctionalInterface
    private interface Range {
        void run(int from, int to);
    }

    /** Runs body over [0, n), split across threads when n * rowWidth is large enough to pay. */
    private void rowsInParallel(int n, int rowWidth, Range body) {
        if ((long) n * rowWidth < SPLIT_ELEMENTS || pool.threads() == 1) {
            body.run(0, n);
            return;
        }
        int chunk = (n + pool.threads() - 1) / pool.threads();
        pool.forEachChunk(n, chunk, (worker, from, to) -> body.run(from, to));
    }

    /** Stops the worker threads; the kernels cannot be used afterwards. */
    @Override
    public void close() {
        pool.close();
    }
}
