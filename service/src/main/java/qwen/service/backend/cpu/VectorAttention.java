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
 * Causal attention on all cores: one work unit per (query row, head), claimed dynamically with
 * the latest (longest) query rows first so the threads finish together. Per unit: scores
 * q . k / sqrt(headDim) against the cached keys, a max-subtracted softmax, and the
 * probability-weighted sum of the cached values, all f32. Keys and values are read from the
 * cache pages four positions at a time, so each query (or accumulator) load serves four rows.
 */
final class VectorAttention {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();
    private static final int PAGE = KvPool.PAGE_TOKENS;

    private final WorkerPool pool;
    private final float[][] scores;
    private final float[][] sums;

    VectorAttention(WorkerPool pool) {
        this.pool = pool;
        this.scores = new float[pool.threads()][0];
        this.sums = new float[pool.threads()][0];
    }

    void attention(float[] q, float[] out, int rowOffset, int tokens, int startPos, LayerKv kv,
                   int numHeads, int headDim) {
        if (kv.length() < startPos + tokens) {
            throw new IllegalArgumentException("attention over positions up to " + (startPos + tokens - 1)
                    + " but the cache holds " + kv.length());
        }
        int units = tokens * numHeads;
        pool.forEachChunk(units, 1, (worker, from, to) -> {
            for (int u = from; u < to; u++) {
                int t = tokens - 1 - u / numHeads;
                int h = u % numHeads;
                head(q, out, (rowOffset + t) * numHeads * headDim + h * headDim, startPos + t + 1, kv,
                        h * headDim, headDim, worker);
            }
        });
    }

    /** One query vector at q[qAt ..] against cached positions [0, keys), cache columns col ... */
    private void head(float[] q, float[] out, int qAt, int keys, LayerKv kv, int col, int headDim, int worker) {
        float[] s = scratch(scores, worker, keys);
        float scale = (float) (1.0 / Math.sqrt(headDim));
        for (int p0 = 0; p0 < keys; p0 += PAGE) {
            MemorySegment page = kv.keyPage(p0 / PAGE);
            int n = Math.min(PAGE, keys - p0);
            int k = 0;
            for (; k + 4 <= n; k += 4) {
                dot4(q, qAt, page, kv.width(), k, col, headDim, s, p0 + k);
            }
            for (; k < n; k++) {
                s[p0 + k] = dot(q, qAt, page, ((long) k * kv.width() + col) * 4, headDim);
            }
        }
        float total = softmax(s, keys, scale);
        float[] acc = scratch(sums, worker, headDim);
        Arrays.fill(acc, 0, headDim, 0f);
        for (int p0 = 0; p0 < keys; p0 += PAGE) {
            MemorySegment page = kv.valuePage(p0 / PAGE);
            int n = Math.min(PAGE, keys - p0);
            int k = 0;
            for (; k + 4 <= n; k += 4) {
                accumulate4(acc, page, kv.width(), k, col, headDim, s, p0 + k);
            }
            for (; k < n; k++) {
                accumulate1(acc, page, ((long) k * kv.width() + col) * 4, headDim, s[p0 + k]);
            }
        }
        float inv = 1f / total;
        for (int i = 0; i < headDim; i++) {
            out[qAt + i] = acc[i] * inv;
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

    /** s[p] = exp(s[p] * scale - max) in place for p < n; returns the sum. */
    static float softmax(float[] s, int n, float scale) {
        int bound = F.loopBound(n);
        FloatVector mv = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
        int i = 0;
        for (; i < bound; i += F.length()) {
            mv = mv.max(FloatVector.fromArray(F, s, i));
        }
        float max = mv.reduceLanes(MAX);
        for (; i < n; i++) {
            max = Math.max(max, s[i]);
        }
        float shift = max * scale;
        FloatVector total = FloatVector.zero(F);
        i = 0;
        for (; i < bound; i += F.length()) {
            FloatVector e = FloatVector.fromArray(F, s, i).mul(scale).sub(shift).lanewise(EXP);
            e.intoArray(s, i);
            total = total.add(e);
        }
        float sum = total.reduceLanes(ADD);
        for (; i < n; i++) {
            s[i] = (float) Math.exp(s[i] * scale - shift);
            sum += s[i];
        }
        return sum;
    }

    /** acc += sum over page rows k .. k + 3 of p[at + j] * v_row. */
    private static void accumulate4(float[] acc, MemorySegment page, int width, int k, int col, int headDim,
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
            FloatVector a = FloatVector.fromArray(F, acc, i);
            a = FloatVector.fromMemorySegment(F, page, off, NATIVE).fma(p0, a);
            a = FloatVector.fromMemorySegment(F, page, off + stride, NATIVE).fma(p1, a);
            a = FloatVector.fromMemorySegment(F, page, off + 2 * stride, NATIVE).fma(p2, a);
            a = FloatVector.fromMemorySegment(F, page, off + 3 * stride, NATIVE).fma(p3, a);
            a.intoArray(acc, i);
        }
        for (int j = 0; j < 4; j++) {
            accumulateTail(acc, page, b0 + j * stride, i, headDim, p[at + j]);
        }
    }

    private static void accumulate1(float[] acc, MemorySegment page, long b, int headDim, float p) {
        FloatVector pv = FloatVector.broadcast(F, p);
        int bound = F.loopBound(headDim);
        int i = 0;
        for (; i < bound; i += F.length()) {
            FloatVector.fromMemorySegment(F, page, b + 4L * i, NATIVE).fma(pv, FloatVector.fromArray(F, acc, i))
                    .intoArray(acc, i);
        }
        accumulateTail(acc, page, b, i, headDim, p);
    }

    private static void accumulateTail(float[] acc, MemorySegment page, long b, int from, int headDim, float p) {
        for (int i = from; i < headDim; i++) {
            acc[i] += p * page.get(ValueLayout.JAVA_FLOAT_UNALIGNED, b + 4L * i);
        }
    }

    private static float[] scratch(float[][] perWorker, int worker, int size) {
        if (perWorker[worker].length < size) {
            perWorker[worker] = new float[Math.max(size, 2 * perWorker[worker].length)];
        }
        return perWorker[worker];
    }
}
