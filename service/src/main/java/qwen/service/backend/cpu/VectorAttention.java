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
 * claimed dynamically head by head, and within a head the latest (longest) blocks first, so the threads
 * finish together and a head's cached keys and values are read by consecutive units while they are
 * still in L2/L3. Per unit: scores q . k / sqrt(headDim) against the cached keys, a max-subtracted
 * softmax, and the probability-weighted sum of the cached values, all f32. Four query rows share each
 * key and value load; every row's arithmetic is the same, operation for operation, as on its own.
 */
final class VectorAttention {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();
    private static final int PAGE = KvPool.PAGE_TOKENS;
    /** Query rows that share one read of the cache pages: their 8 score rows and accumulators fit in L1. */
    static final int QUERY_BLOCK = 8;
    /** Positions per unit of a decode step's scores: 16 whole cached rows (128 KiB at 1.8B shapes). */
    private static final int SPAN = 16;

    private final WorkerPool pool;
    private final float[][] scores;
    private final float[][] sums;
    private final float[][] totals;
    /** A decode step's scores, all heads: written by every thread in its spans, read by all. */
    private float[] decodeScores = new float[0];

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
        if (tokens == 1) {
            decodeStep(q, out, rowOffset, startPos, kv, numHeads, headDim);
            return;
        }
        int blocks = (tokens + QUERY_BLOCK - 1) / QUERY_BLOCK;
        int units = blocks * numHeads;
        pool.forEachChunk(units, 1, (worker, from, to) -> {
            for (int u = from; u < to; u++) {
                int h = u / blocks;
                int b = blocks - 1 - u % blocks;                    // the latest (longest) blocks first
                int t0 = b * QUERY_BLOCK;
                block(q, out, rowOffset, t0, Math.min(tokens, t0 + QUERY_BLOCK), startPos, kv, h, numHeads, headDim,
                        worker);
            }
        });
    }

    /**
     * Query rows [t0, t1) of one head: row t attends to positions [0, startPos + t]. The rows go
     * through each cache page four at a time, each key and value load serving the four, rather than
     * row by row: prefill attention is bound by these loads, not by its FMAs. Each row's arithmetic
     * is the same as on its own, in the same order.
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
            for (int j = 0; j < rows; j += 4) {
                // Four rows at a time share each key load; row j + r sees r positions more than row j.
                int quad = Math.min(4, rows - j);
                int n = startPos + t0 + j + 1 - p0;
                int qAt = (rowOffset + t0 + j) * rowStride + col;
                int sAt = j * longest + p0;
                int k = 0;
                if (quad == 4) {
                    for (int nj = Math.min(PAGE, n); k + 2 <= nj; k += 2) {
                        dot2x4(q, qAt, rowStride, page, width, k, col, headDim, s, sAt + k, longest);
                    }
                }
                for (int r = 0; r < quad; r++) {
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
            for (int j = 0; j < rows; j += 4) {
                int quad = Math.min(4, rows - j);
                int n = startPos + t0 + j + 1 - p0;
                int sAt = j * longest + p0;
                int aAt = j * headDim;
                if (quad == 4) {
                    values4(acc, aAt, headDim, page, width, col, s, sAt, longest, n);
                } else {
                    for (int r = 0; r < quad; r++) {
                        values1(acc, aAt + r * headDim, headDim, page, width, col, s, sAt + r * longest,
                                Math.max(0, Math.min(PAGE, n + r)));
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

    /**
     * The one query row of a decode step (row rowOffset, at position pos), in two passes over the
     * cache, each head's operations the same and in the same order as {@link #block}'s for a single
     * row. A head's slice of a cached row is 512 bytes with the next row 8 KiB on (at 1.8B shapes);
     * read head by head, those slices defeated the hardware prefetchers and the cache came at a third
     * of the rate the matrices stream at. So the scores are taken span by span of positions, every
     * head of a row at once (whole rows, contiguous in a page), and the value sums group by group
     * of heads, each group's slices of a row together.
     */
    private void decodeStep(float[] q, float[] out, int rowOffset, int pos, LayerKv kv, int numHeads, int headDim) {
        int n = pos + 1;
        if (decodeScores.length < numHeads * n) {
            decodeScores = new float[Math.max(numHeads * n, 2 * decodeScores.length)];
        }
        float[] s = decodeScores;
        pool.forEachChunk((n + SPAN - 1) / SPAN, 1, (worker, from, to) -> {
            for (int c = from; c < to; c++) {
                scoreSpan(q, rowOffset, kv, s, n, c * SPAN, Math.min(n, (c + 1) * SPAN), numHeads, headDim);
            }
        });
        int group = (numHeads + pool.threads() - 1) / pool.threads();
        pool.forEachChunk((numHeads + group - 1) / group, 1, (worker, from, to) -> {
            for (int u = from; u < to; u++) {
                decodeValues(out, rowOffset, n, kv, s, u * group, Math.min(numHeads, (u + 1) * group), numHeads,
                        headDim, worker);
            }
        });
    }

    /**
     * Scores of positions [a, b), all heads, into s[h * n + p]. A span starts at a multiple of
     * {@link #SPAN}, which divides the page size, so it lies in one page.
     */
    private static void scoreSpan(float[] q, int rowOffset, LayerKv kv, float[] s, int n, int a, int b, int numHeads,
                                  int headDim) {
        MemorySegment page = kv.keyPage(a / PAGE);
        int width = kv.width();
        int qRow = rowOffset * numHeads * headDim;
        int p0 = a / PAGE * PAGE;
        int k = a - p0;
        int end = b - p0;
        for (; k + 4 <= end; k += 4) {
            for (int h = 0; h < numHeads; h++) {
                dot4(q, qRow + h * headDim, page, width, k, h * headDim, headDim, s, h * n + p0 + k);
            }
        }
        for (; k < end; k++) {
            for (int h = 0; h < numHeads; h++) {
                s[h * n + p0 + k] = dot(q, qRow + h * headDim, page, ((long) k * width + h * headDim) * 4, headDim);
            }
        }
    }

    /** Softmax and value sums of a decode step for heads [h0, h1), from the scores s[h * n + p]. */
    private void decodeValues(float[] out, int rowOffset, int n, LayerKv kv, float[] s, int h0, int h1, int numHeads,
                              int headDim, int worker) {
        int heads = h1 - h0;
        float[] acc = scratch(sums, worker, heads * headDim);
        int width = kv.width();
        int sOff = h0 * n;
        float scale = (float) (1.0 / Math.sqrt(headDim));
        float[] total = scratch(totals, worker, heads);
        for (int j = 0; j < heads; j++) {
            total[j] = softmaxAt(s, sOff + j * n, n, scale);
        }
        Arrays.fill(acc, 0, heads * headDim, 0f);
        int bound = F.loopBound(headDim);
        long stride = 4L * width;
        for (int p0 = 0; p0 < n; p0 += PAGE) {
            MemorySegment page = kv.valuePage(p0 / PAGE);
            int np = Math.min(PAGE, n - p0);
            int k = 0;
            // Head j of the group: sums at acc[j * headDim], weights at s[sOff + j * n + position].
            for (; k + 4 <= np; k += 4) {
                for (int j = 0; j < heads; j++) {
                    values4keys(acc, j * headDim, bound, page, ((long) k * width + (h0 + j) * headDim) * 4, stride, s,
                            sOff + j * n + p0 + k);
                }
            }
            for (; k < np; k++) {
                for (int j = 0; j < heads; j++) {
                    values1key(acc, j * headDim, bound, page, ((long) k * width + (h0 + j) * headDim) * 4,
                            s[sOff + j * n + p0 + k]);
                }
            }
            if (bound < headDim) {
                for (k = 0; k < np; k++) {
                    for (int j = 0; j < heads; j++) {
                        accumulateTail(acc, j * headDim, page, ((long) k * width + (h0 + j) * headDim) * 4, bound,
                                headDim, s[sOff + j * n + p0 + k]);
                    }
                }
            }
        }
        for (int j = 0; j < heads; j++) {
            float inv = 1f / total[j];
            int oAt = rowOffset * numHeads * headDim + (h0 + j) * headDim;
            for (int i = 0; i < headDim; i++) {
                out[oAt + i] = acc[j * headDim + i] * inv;
            }
        }
    }

    /**
     * acc[a + d] += p[pa + i] * v_i[d] for keys i = 0..3 in order (stride bytes apart from byte at),
     * over the vector dims [0, bound): {@link #values1}'s FMAs, four keys per load and store of the sums.
     */
    private static void values4keys(float[] acc, int a, int bound, MemorySegment page, long at, long stride,
                                    float[] p, int pa) {
        FloatVector w0 = FloatVector.broadcast(F, p[pa]);
        FloatVector w1 = FloatVector.broadcast(F, p[pa + 1]);
        FloatVector w2 = FloatVector.broadcast(F, p[pa + 2]);
        FloatVector w3 = FloatVector.broadcast(F, p[pa + 3]);
        for (int d = 0; d < bound; d += F.length()) {
            long off = at + 4L * d;
            FloatVector sum = FloatVector.fromArray(F, acc, a + d);
            sum = FloatVector.fromMemorySegment(F, page, off, NATIVE).fma(w0, sum);
            sum = FloatVector.fromMemorySegment(F, page, off + stride, NATIVE).fma(w1, sum);
            sum = FloatVector.fromMemorySegment(F, page, off + 2 * stride, NATIVE).fma(w2, sum);
            sum = FloatVector.fromMemorySegment(F, page, off + 3 * stride, NATIVE).fma(w3, sum);
            sum.intoArray(acc, a + d);
        }
    }

    /** {@link #values4keys} for one key. */
    private static void values1key(float[] acc, int a, int bound, MemorySegment page, long at, float p) {
        FloatVector w = FloatVector.broadcast(F, p);
        for (int d = 0; d < bound; d += F.length()) {
            FloatVector.fromMemorySegment(F, page, at + 4L * d, NATIVE).fma(w, FloatVector.fromArray(F, acc, a + d))
                    .intoArray(acc, a + d);
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
     * Scores of four query rows (q rows qAt + i * qStride, score rows at + i * sStride) against page
     * keys k and k + 1, each key vector loaded once for the four; each row's sums are formed as
     * {@link #dot4} forms them. Two vectors of dims per iteration, written out (then one for an odd
     * count): left to itself C2 unrolled the one-vector loop four times and spilled its accumulators
     * (16 against 20 GFLOP per CPU-second, keys in L1).
     */
    private static void dot2x4(float[] q, int qAt, int qStride, MemorySegment page, int width, int k, int col,
                               int headDim, float[] s, int at, int sStride) {
        long b0 = ((long) k * width + col) * 4;
        long b1 = b0 + 4L * width;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        FloatVector c0 = a0, c1 = a0, c2 = a0, c3 = a0;
        int bound = F.loopBound(headDim);
        int l = F.length();
        int i = 0;
        for (; i + 2 * l <= bound; i += 2 * l) {
            FloatVector k0 = FloatVector.fromMemorySegment(F, page, b0 + 4L * i, NATIVE);
            FloatVector k1 = FloatVector.fromMemorySegment(F, page, b1 + 4L * i, NATIVE);
            FloatVector qv = FloatVector.fromArray(F, q, qAt + i);
            a0 = k0.fma(qv, a0);
            c0 = k1.fma(qv, c0);
            qv = FloatVector.fromArray(F, q, qAt + qStride + i);
            a1 = k0.fma(qv, a1);
            c1 = k1.fma(qv, c1);
            qv = FloatVector.fromArray(F, q, qAt + 2 * qStride + i);
            a2 = k0.fma(qv, a2);
            c2 = k1.fma(qv, c2);
            qv = FloatVector.fromArray(F, q, qAt + 3 * qStride + i);
            a3 = k0.fma(qv, a3);
            c3 = k1.fma(qv, c3);
            int j = i + l;
            k0 = FloatVector.fromMemorySegment(F, page, b0 + 4L * j, NATIVE);
            k1 = FloatVector.fromMemorySegment(F, page, b1 + 4L * j, NATIVE);
            qv = FloatVector.fromArray(F, q, qAt + j);
            a0 = k0.fma(qv, a0);
            c0 = k1.fma(qv, c0);
            qv = FloatVector.fromArray(F, q, qAt + qStride + j);
            a1 = k0.fma(qv, a1);
            c1 = k1.fma(qv, c1);
            qv = FloatVector.fromArray(F, q, qAt + 2 * qStride + j);
            a2 = k0.fma(qv, a2);
            c2 = k1.fma(qv, c2);
            qv = FloatVector.fromArray(F, q, qAt + 3 * qStride + j);
            a3 = k0.fma(qv, a3);
            c3 = k1.fma(qv, c3);
        }
        for (; i < bound; i += l) {
            FloatVector k0 = FloatVector.fromMemorySegment(F, page, b0 + 4L * i, NATIVE);
            FloatVector k1 = FloatVector.fromMemorySegment(F, page, b1 + 4L * i, NATIVE);
            FloatVector qv = FloatVector.fromArray(F, q, qAt + i);
            a0 = k0.fma(qv, a0);
            c0 = k1.fma(qv, c0);
            qv = FloatVector.fromArray(F, q, qAt + qStride + i);
            a1 = k0.fma(qv, a1);
            c1 = k1.fma(qv, c1);
            qv = FloatVector.fromArray(F, q, qAt + 2 * qStride + i);
            a2 = k0.fma(qv, a2);
            c2 = k1.fma(qv, c2);
            qv = FloatVector.fromArray(F, q, qAt + 3 * qStride + i);
            a3 = k0.fma(qv, a3);
            c3 = k1.fma(qv, c3);
        }
        s[at] = a0.reduceLanes(ADD) + dotTail(q, qAt, page, b0, i, headDim);
        s[at + 1] = c0.reduceLanes(ADD) + dotTail(q, qAt, page, b1, i, headDim);
        s[at + sStride] = a1.reduceLanes(ADD) + dotTail(q, qAt + qStride, page, b0, i, headDim);
        s[at + sStride + 1] = c1.reduceLanes(ADD) + dotTail(q, qAt + qStride, page, b1, i, headDim);
        s[at + 2 * sStride] = a2.reduceLanes(ADD) + dotTail(q, qAt + 2 * qStride, page, b0, i, headDim);
        s[at + 2 * sStride + 1] = c2.reduceLanes(ADD) + dotTail(q, qAt + 2 * qStride, page, b1, i, headDim);
        s[at + 3 * sStride] = a3.reduceLanes(ADD) + dotTail(q, qAt + 3 * qStride, page, b0, i, headDim);
        s[at + 3 * sStride + 1] = c3.reduceLanes(ADD) + dotTail(q, qAt + 3 * qStride, page, b1, i, headDim);
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

    /**
     * One row's value sum over keys [0, n) of a page: acc[aAt + d] += p[pAt + k] * v_k[d], key by
     * key in order for every d (an FMA per key in the vector dims, a multiply and an add in the tail
     * dims), two vectors of dims at a time held in registers across the keys.
     */
    private static void values1(float[] acc, int aAt, int headDim, MemorySegment page, int width, int col,
                                float[] p, int pAt, int n) {
        values1(acc, aAt, headDim, page, width, col, p, pAt, n, 0);
    }

    /** {@link #values1} for dims [from, headDim) only; from is a multiple of the vector length. */
    private static void values1(float[] acc, int aAt, int headDim, MemorySegment page, int width, int col,
                                float[] p, int pAt, int n, int from) {
        long stride = 4L * width;
        long base = 4L * col;
        int bound = F.loopBound(headDim);
        int l = F.length();
        int d = from;
        for (; d + 2 * l <= bound; d += 2 * l) {
            values1x2(acc, aAt + d, page, base + 4L * d, stride, p, pAt, n);
        }
        for (; d < bound; d += l) {
            values1x1(acc, aAt + d, page, base + 4L * d, stride, p, pAt, n);
        }
        for (int k = 0; k < n; k++) {
            accumulateTail(acc, aAt, page, base + k * stride, bound, headDim, p[pAt + k]);
        }
    }

    /**
     * Rows j .. j + 3 of the value sums over one page (accumulators aAt + r * headDim, weights
     * pAt + r * pStride): row j + r takes keys [0, n + r) of the page. The keys all four rows see go
     * through {@link #values4x2}, each loaded once for the four; each row's further keys follow, so
     * every row adds its keys in order, as {@link #values1} does.
     */
    private static void values4(float[] acc, int aAt, int headDim, MemorySegment page, int width, int col,
                                float[] p, int pAt, int pStride, int n) {
        long stride = 4L * width;
        long base = 4L * col;
        int common = Math.max(0, Math.min(PAGE, n));
        int bound = F.loopBound(headDim);
        int l = F.length();
        int d = 0;
        for (; d + 2 * l <= bound; d += 2 * l) {
            values4x2(acc, aAt + d, headDim, page, base + 4L * d, stride, p, pAt, pStride, common);
            for (int r = 1; r < 4; r++) {
                int nr = Math.max(0, Math.min(PAGE, n + r));
                values1x2(acc, aAt + r * headDim + d, page, base + 4L * d + common * stride, stride, p,
                        pAt + r * pStride + common, nr - common);
            }
        }
        for (int r = 0; r < 4; r++) {
            values1(acc, aAt + r * headDim, headDim, page, width, col, p, pAt + r * pStride,
                    Math.max(0, Math.min(PAGE, n + r)), d);
        }
    }

    /**
     * Four rows (accumulators a + r * headDim, weights pa + r * ps) by two vectors of dims, over n
     * keys from byte offset at, stride apart: the eight accumulators stay in registers across the keys.
     */
    private static void values4x2(float[] acc, int a, int headDim, MemorySegment page, long at, long stride,
                                  float[] p, int pa, int ps, int n) {
        int l = F.length();
        int b = a + headDim;
        int c = b + headDim;
        int e = c + headDim;
        FloatVector a0 = FloatVector.fromArray(F, acc, a), a1 = FloatVector.fromArray(F, acc, a + l);
        FloatVector b0 = FloatVector.fromArray(F, acc, b), b1 = FloatVector.fromArray(F, acc, b + l);
        FloatVector c0 = FloatVector.fromArray(F, acc, c), c1 = FloatVector.fromArray(F, acc, c + l);
        FloatVector e0 = FloatVector.fromArray(F, acc, e), e1 = FloatVector.fromArray(F, acc, e + l);
        long off = at;
        for (int k = 0; k < n; k++, off += stride) {
            FloatVector v0 = FloatVector.fromMemorySegment(F, page, off, NATIVE);
            FloatVector v1 = FloatVector.fromMemorySegment(F, page, off + 4L * l, NATIVE);
            FloatVector w = FloatVector.broadcast(F, p[pa + k]);
            a0 = v0.fma(w, a0);
            a1 = v1.fma(w, a1);
            w = FloatVector.broadcast(F, p[pa + ps + k]);
            b0 = v0.fma(w, b0);
            b1 = v1.fma(w, b1);
            w = FloatVector.broadcast(F, p[pa + 2 * ps + k]);
            c0 = v0.fma(w, c0);
            c1 = v1.fma(w, c1);
            w = FloatVector.broadcast(F, p[pa + 3 * ps + k]);
            e0 = v0.fma(w, e0);
            e1 = v1.fma(w, e1);
        }
        a0.intoArray(acc, a);
        a1.intoArray(acc, a + l);
        b0.intoArray(acc, b);
        b1.intoArray(acc, b + l);
        c0.intoArray(acc, c);
        c1.intoArray(acc, c + l);
        e0.intoArray(acc, e);
        e1.intoArray(acc, e + l);
    }

    /** One row by two vectors of dims over n keys: {@link #values4x2}'s arithmetic for a single row. */
    private static void values1x2(float[] acc, int a, MemorySegment page, long at, long stride, float[] p, int pa,
                                  int n) {
        int l = F.length();
        FloatVector a0 = FloatVector.fromArray(F, acc, a), a1 = FloatVector.fromArray(F, acc, a + l);
        long off = at;
        for (int k = 0; k < n; k++, off += stride) {
            FloatVector w = FloatVector.broadcast(F, p[pa + k]);
            a0 = FloatVector.fromMemorySegment(F, page, off, NATIVE).fma(w, a0);
            a1 = FloatVector.fromMemorySegment(F, page, off + 4L * l, NATIVE).fma(w, a1);
        }
        a0.intoArray(acc, a);
        a1.intoArray(acc, a + l);
    }

    private static void values1x1(float[] acc, int a, MemorySegment page, long at, long stride, float[] p, int pa,
                                  int n) {
        FloatVector a0 = FloatVector.fromArray(F, acc, a);
        long off = at;
        for (int k = 0; k < n; k++, off += stride) {
            a0 = FloatVector.fromMemorySegment(F, page, off, NATIVE).fma(FloatVector.broadcast(F, p[pa + k]), a0);
        }
        a0.intoArray(acc, a);
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
