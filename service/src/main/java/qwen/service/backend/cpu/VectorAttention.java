package qwen.service.backend.cpu;

import static jdk.incubator.vector.VectorOperators.ADD;
import static jdk.incubator.vector.VectorOperators.EXP;
import static jdk.incubator.vector.VectorOperators.MAX;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import qwen.service.kv.KvPool;
import qwen.service.kv.LayerKv;

/**
 * Causal attention on all cores: one work unit per (block of {@link #QUERY_BLOCK} query rows, head),
 * claimed dynamically with the latest (longest) blocks first so the threads finish together. Per unit: scores
 * q . k / sqrt(headDim) against the cached keys, a max-subtracted softmax, and the
 * probability-weighted sum of the cached values, all f32. Keys and values are read from the
 * cache pages four positions at a time, so each query (or accumulator) load serves four rows.
 */
final class VectorAttention {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();
    private static final int PAGE = KvPool.PAGE_TOKENS;
    /** Query rows that share one read of the cache pages: their 8 score rows and accumulators fit in L1. */
    static final int QUERY_BLOCK = 8;

    private final WorkerPool pool;
    private final float[][] scores;
    private final float[][] sums;
    private final float[][] totals;

    VectorAttention(WorkerPool pool) {
        this.pool = pool;
        this.scores = new float[pool.threads()][0];
        this.sums = new float[pool.threads()][0];
        this.totals = new float[pool.threads()][0];
    }

    void attention(float[] q, float[] out, int rowOffset, int tokens, int startPos, LayerKv kv,
                   int numHeads, int headDim) {
        if (kv.length() < startPos + tokens) {
            throw new IllegalArgumentException("attention over positions up to " + (startPos + tokens - 1)
                    + " but the cache holds " + kv.length());
        }
        int blocks = (tokens + QUERY_BLOCK - 1) / QUERY_BLOCK;
        int units = blocks * numHeads;
        pool.forEachChunk(units, 1, (worker, from, to) -> {
            for (int u = from; u < to; u++) {
                int b = blocks - 1 - u / numHeads;                  // the latest (longest) blocks first
                int h = u % numHeads;
                int t0 = b * QUERY_BLOCK;
                block(q, out, rowOffset, t0, Math.min(tokens, t0 + QUERY_BLOCK), startPos, kv, h, numHeads, headDim,
                        worker);
            }
        });
    }

    /**
     * Query rows [t0, t1) of one head: row t attends to positions [0, startPos + t]. Each cache page
     * is read once for all the block's rows (its head slice, 64 x headDim floats, stays in L1/L2
     * meanwhile) rather than once per row: prefill attention is bound by these reads, not by its
     * FMAs. Each row's arithmetic is the same as on its own, in the same order.
     */
    private void block(float[] q, float[] out, int rowOffset, int t0, int t1, int startPos, LayerKv kv, int h,
                       int numHeads, int headDim, int worker) {
        int rows = t1 - t0;
        int longest = startPos + t1;
        float[] s = scratch(scores, worker, rows * longest);
        float[] acc = scratch(sums, worker, rows * headDim);
        int col = h * headDim;
        int width = kv.width();
        float scale = (float) (1.0 / Math.sqrt(headDim));
        int rowStride = numHeads * headDim;
        for (int p0 = 0; p0 < longest; p0 += PAGE) {
            MemorySegment page = kv.keyPage(p0 / PAGE);
            for (int j = 0; j < rows; j += 2) {
                // Two rows at a time share each key load; row j + 1 sees one position more.
                int pair = Math.min(2, rows - j);
                int n = Math.min(PAGE, startPos + t0 + j + 1 - p0);
                int qAt = (rowOffset + t0 + j) * rowStride + col;
                int sAt = j * longest + p0;
                int k = 0;
                if (pair == 2) {
                    for (; k + 4 <= n; k += 4) {
                        dot4x2(q, qAt, rowStride, page, width, k, col, headDim, s, sAt + k, longest);
                    }
                }
                for (int r = 0; r < pair; r++) {
                    int nr = Math.min(PAGE, n + r);
                    int kr = k;
                    for (; kr + 4 <= nr; kr += 4) {
                        dot4(q, qAt + r * rowStride, page, width, kr, col, headDim, s, sAt + r * longest + kr);
                    }
                    for (; kr < nr; kr++) {
                        s[sAt + r * longest + kr] = dot(q, qAt + r * rowStride, page, ((long) kr * width + col) * 4, headDim);
                    }
                }
            }
        }
        float[] total = scratch(totals, worker, rows);
        for (int j = 0; j < rows; j++) {
            total[j] = softmaxAt(s, j * longest, startPos + t0 + j + 1, scale);
        }
        Arrays.fill(acc, 0, rows * headDim, 0f);
        for (int p0 = 0; p0 < longest; p0 += PAGE) {
            MemorySegment page = kv.valuePage(p0 / PAGE);
            for (int j = 0; j < rows; j += 2) {
                int pair = Math.min(2, rows - j);
                int n = Math.min(PAGE, startPos + t0 + j + 1 - p0);
                int sAt = j * longest + p0;
                int aAt = j * headDim;
                int k = 0;
                if (pair == 2) {
                    for (; k + 4 <= n; k += 4) {
                        accumulate4x2(acc, aAt, headDim, page, width, k, col, s, sAt + k, longest);
                    }
                }
                for (int r = 0; r < pair; r++) {
                    int nr = Math.min(PAGE, n + r);
                    int kr = k;
                    for (; kr + 4 <= nr; kr += 4) {
                        accumulate4(acc, aAt + r * headDim, page, width, kr, col, headDim, s, sAt + r * longest + kr);
                    }
                    for (; kr < nr; kr++) {
                        accumulate1(acc, aAt + r * headDim, page, ((long) kr * width + col) * 4, headDim,
                                s[sAt + r * longest + kr]);
                    }
                }
            }
        }
        for (int j = 0; j < rows; j++) {
            float inv = 1f / total[j];
            int oAt = (rowOffset + t0 + j) * numHeads * headDim + col;
            for (int i = 0; i < headDim; i++) {
                out[oAt + i] = acc[j * headDim + i] * inv;
            }
        }
    }

    /** Scores of page rows k .. k + 3 into s[at .. at + 3] (unscaled). */
    private static void dot4(float[] q, int qAt, MemorySegment page, int width, int k, int col, int headDim,
                             float[] s, int at) {
        long b0 = ((long) k * width + col) * 4;
        long stride = 4L * width;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        int bound = F.loopBound(headDim);
        int i = 0;
        for (; i < bound; i += F.length()) {
            FloatVector qv = FloatVector.fromArray(F, q, qAt + i);
            long off = b0 + 4L * i;
            a0 = FloatVector.fromMemorySegment(F, page, off, NATIVE).fma(qv, a0);
            a1 = FloatVector.fromMemorySegment(F, page, off + stride, NATIVE).fma(qv, a1);
            a2 = FloatVector.fromMemorySegment(F, page, off + 2 * stride, NATIVE).fma(qv, a2);
            a3 = FloatVector.fromMemorySegment(F, page, off + 3 * stride, NATIVE).fma(qv, a3);
        }
        s[at] = a0.reduceLanes(ADD) + dotTail(q, qAt, page, b0, i, headDim);
        s[at + 1] = a1.reduceLanes(ADD) + dotTail(q, qAt, page, b0 + stride, i, headDim);
        s[at + 2] = a2.reduceLanes(ADD) + dotTail(q, qAt, page, b0 + 2 * stride, i, headDim);
        s[at + 3] = a3.reduceLanes(ADD) + dotTail(q, qAt, page, b0 + 3 * stride, i, headDim);
    }

    /**
     * {@link #dot4} for two query rows at once (q rows qAt and qAt + qStride, score rows at and
     * at + sStride), each key vector loaded once for both; each row's sums are formed as dot4
     * forms them.
     */
    private static void dot4x2(float[] q, int qAt, int qStride, MemorySegment page, int width, int k, int col,
                               int headDim, float[] s, int at, int sStride) {
        long b0 = ((long) k * width + col) * 4;
        long stride = 4L * width;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        FloatVector c0 = a0, c1 = a0, c2 = a0, c3 = a0;
        int bound = F.loopBound(headDim);
        int i = 0;
        for (; i < bound; i += F.length()) {
            FloatVector qa = FloatVector.fromArray(F, q, qAt + i);
            FloatVector qc = FloatVector.fromArray(F, q, qAt + qStride + i);
            long off = b0 + 4L * i;
            FloatVector kv = FloatVector.fromMemorySegment(F, page, off, NATIVE);
            a0 = kv.fma(qa, a0);
            c0 = kv.fma(qc, c0);
            kv = FloatVector.fromMemorySegment(F, page, off + stride, NATIVE);
            a1 = kv.fma(qa, a1);
            c1 = kv.fma(qc, c1);
            kv = FloatVector.fromMemorySegment(F, page, off + 2 * stride, NATIVE);
            a2 = kv.fma(qa, a2);
            c2 = kv.fma(qc, c2);
            kv = FloatVector.fromMemorySegment(F, page, off + 3 * stride, NATIVE);
            a3 = kv.fma(qa, a3);
            c3 = kv.fma(qc, c3);
        }
        s[at] = a0.reduceLanes(ADD) + dotTail(q, qAt, page, b0, i, headDim);
        s[at + 1] = a1.reduceLanes(ADD) + dotTail(q, qAt, page, b0 + stride, i, headDim);
        s[at + 2] = a2.reduceLanes(ADD) + dotTail(q, qAt, page, b0 + 2 * stride, i, headDim);
        s[at + 3] = a3.reduceLanes(ADD) + dotTail(q, qAt, page, b0 + 3 * stride, i, headDim);
        int qc = qAt + qStride;
        int sc = at + sStride;
        s[sc] = c0.reduceLanes(ADD) + dotTail(q, qc, page, b0, i, headDim);
        s[sc + 1] = c1.reduceLanes(ADD) + dotTail(q, qc, page, b0 + stride, i, headDim);
        s[sc + 2] = c2.reduceLanes(ADD) + dotTail(q, qc, page, b0 + 2 * stride, i, headDim);
        s[sc + 3] = c3.reduceLanes(ADD) + dotTail(q, qc, page, b0 + 3 * stride, i, headDim);
    }

    private static float dot(float[] q, int qAt, MemorySegment page, long b, int headDim) {
        FloatVector a = FloatVector.zero(F);
        int bound = F.loopBound(headDim);
        int i = 0;
        for (; i < bound; i += F.length()) {
            a = FloatVector.fromMemorySegment(F, page, b + 4L * i, NATIVE).fma(FloatVector.fromArray(F, q, qAt + i), a);
        }
        return a.reduceLanes(ADD) + dotTail(q, qAt, page, b, i, headDim);
    }

    private static float dotTail(float[] q, int qAt, MemorySegment page, long b, int from, int headDim) {
        float s = 0;
        for (int i = from; i < headDim; i++) {
            s += q[qAt + i] * page.get(ValueLayout.JAVA_FLOAT_UNALIGNED, b + 4L * i);
        }
        return s;
    }

    /** s[at + p] = exp(s[at + p] * scale - max) in place for p < n; returns the sum. */
    static float softmaxAt(float[] s, int at, int n, float scale) {
        int bound = F.loopBound(n);
        FloatVector mv = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
        int i = 0;
        for (; i < bound; i += F.length()) {
            mv = mv.max(FloatVector.fromArray(F, s, at + i));
        }
        float max = mv.reduceLanes(MAX);
        for (; i < n; i++) {
            max = Math.max(max, s[at + i]);
        }
        float shift = max * scale;
        FloatVector total = FloatVector.zero(F);
        i = 0;
        for (; i < bound; i += F.length()) {
            FloatVector e = FloatVector.fromArray(F, s, at + i).mul(scale).sub(shift).lanewise(EXP);
            e.intoArray(s, at + i);
            total = total.add(e);
        }
        float sum = total.reduceLanes(ADD);
        for (; i < n; i++) {
            s[at + i] = (float) Math.exp(s[at + i] * scale - shift);
            sum += s[at + i];
        }
        return sum;
    }

    /** acc += sum over page rows k .. k + 3 of p[at + j] * v_row. */
    private static void accumulate4(float[] acc, int aAt, MemorySegment page, int width, int k, int col, int headDim,
                                    float[] p, int at) {
        long b0 = ((long) k * width + col) * 4;
        long stride = 4L * width;
        FloatVector p0 = FloatVector.broadcast(F, p[at]);
        FloatVector p1 = FloatVector.broadcast(F, p[at + 1]);
        FloatVector p2 = FloatVector.broadcast(F, p[at + 2]);
        FloatVector p3 = FloatVector.broadcast(F, p[at + 3]);
        int bound = F.loopBound(headDim);
        int i = 0;
        for (; i < bound; i += F.length()) {
            long off = b0 + 4L * i;
            FloatVector a = FloatVector.fromArray(F, acc, aAt + i);
            a = FloatVector.fromMemorySegment(F, page, off, NATIVE).fma(p0, a);
            a = FloatVector.fromMemorySegment(F, page, off + stride, NATIVE).fma(p1, a);
            a = FloatVector.fromMemorySegment(F, page, off + 2 * stride, NATIVE).fma(p2, a);
            a = FloatVector.fromMemorySegment(F, page, off + 3 * stride, NATIVE).fma(p3, a);
            a.intoArray(acc, aAt + i);
        }
        for (int j = 0; j < 4; j++) {
            accumulateTail(acc, aAt, page, b0 + j * stride, i, headDim, p[at + j]);
        }
    }

    /**
     * {@link #accumulate4} for two rows at once (accumulators aAt and aAt + headDim, weights at and
     * at + pStride), each value vector loaded once for both, each row's sums in accumulate4's order.
     */
    private static void accumulate4x2(float[] acc, int aAt, int headDim, MemorySegment page, int width, int k, int col,
                                      float[] p, int at, int pStride) {
        long b0 = ((long) k * width + col) * 4;
        long stride = 4L * width;
        FloatVector p0 = FloatVector.broadcast(F, p[at]);
        FloatVector p1 = FloatVector.broadcast(F, p[at + 1]);
        FloatVector p2 = FloatVector.broadcast(F, p[at + 2]);
        FloatVector p3 = FloatVector.broadcast(F, p[at + 3]);
        FloatVector r0 = FloatVector.broadcast(F, p[at + pStride]);
        FloatVector r1 = FloatVector.broadcast(F, p[at + pStride + 1]);
        FloatVector r2 = FloatVector.broadcast(F, p[at + pStride + 2]);
        FloatVector r3 = FloatVector.broadcast(F, p[at + pStride + 3]);
        int bound = F.loopBound(headDim);
        int i = 0;
        for (; i < bound; i += F.length()) {
            long off = b0 + 4L * i;
            FloatVector a = FloatVector.fromArray(F, acc, aAt + i);
            FloatVector c = FloatVector.fromArray(F, acc, aAt + headDim + i);
            FloatVector v = FloatVector.fromMemorySegment(F, page, off, NATIVE);
            a = v.fma(p0, a);
            c = v.fma(r0, c);
            v = FloatVector.fromMemorySegment(F, page, off + stride, NATIVE);
            a = v.fma(p1, a);
            c = v.fma(r1, c);
            v = FloatVector.fromMemorySegment(F, page, off + 2 * stride, NATIVE);
            a = v.fma(p2, a);
            c = v.fma(r2, c);
            v = FloatVector.fromMemorySegment(F, page, off + 3 * stride, NATIVE);
            a = v.fma(p3, a);
            c = v.fma(r3, c);
            a.intoArray(acc, aAt + i);
            c.intoArray(acc, aAt + headDim + i);
        }
        for (int j = 0; j < 4; j++) {
            accumulateTail(acc, aAt, page, b0 + j * stride, i, headDim, p[at + j]);
            accumulateTail(acc, aAt + headDim, page, b0 + j * stride, i, headDim, p[at + pStride + j]);
        }
    }

    private static void accumulate1(float[] acc, int aAt, MemorySegment page, long b, int headDim, float p) {
        FloatVector pv = FloatVector.broadcast(F, p);
        int bound = F.loopBound(headDim);
        int i = 0;
        for (; i < bound; i += F.length()) {
            FloatVector.fromMemorySegment(F, page, b + 4L * i, NATIVE).fma(pv, FloatVector.fromArray(F, acc, aAt + i))
                    .intoArray(acc, aAt + i);
        }
        accumulateTail(acc, aAt, page, b, i, headDim, p);
    }

    private static void accumulateTail(float[] acc, int aAt, MemorySegment page, long b, int from, int headDim,
                                       float p) {
        for (int i = from; i < headDim; i++) {
            acc[aAt + i] += p * page.get(ValueLayout.JAVA_FLOAT_UNALIGNED, b + 4L * i);
        }
    }

    private static float[] scratch(float[][] perWorker, int worker, int size) {
        if (perWorker[worker].length < size) {
            perWorker[worker] = new float[Math.max(size, 2 * perWorker[worker].length)];
        }
        return perWorker[worker];
    }
}
