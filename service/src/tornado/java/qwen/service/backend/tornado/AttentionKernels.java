package qwen.service.backend.tornado;

import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.math.TornadoMath;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

/**
 * Rotary embedding, the KV append and causal attention on the device; the references are
 * {@code ScalarKernels.rope} and {@code ScalarKernels.attention}.
 *
 * <p>A layer's KV arena is one f32 array of pages; page p holds {@code PAGE} positions of keys
 * (PAGE x d floats) followed by the same positions of values. A row's key slot is
 * page * 2 * PAGE * d + (pos % PAGE) * d; its value slot is PAGE * d further.
 *
 * <p>Attention is split-K ("flash decoding"). The grids are fixed when the graph is built, for
 * at most {@link #GRID_ROWS} rows, and each step divides them among its rows at run time: with
 * few rows each (row, head) gets up to {@link #MAX_SPLITS} work-groups, each over its own
 * contiguous range of positions, and {@link #combine} merges their partial softmaxes; with many
 * rows (prefill) a work-group takes whole (row, head) pairs in turn and writes att itself.
 */
final class AttentionKernels {

    /** Positions per device page (as {@code KvPool.PAGE_TOKENS}). */
    static final int PAGE = 64;

    /** Keys staged in local memory at once; divides PAGE, so a tile never spans two pages. */
    static final int TILE = 32;

    /** Most work-groups that share one (row, head). */
    static final int MAX_SPLITS = 32;

    /** Fewest positions a split takes, so short contexts are not cut into slivers. */
    static final int MIN_SPLIT = 64;

    /** Largest head_dim attend handles: one thread per output dimension of a head. */
    static final int MAX_HEAD_DIM = 128;

    /**
     * Rows' worth of (row, head) work-groups in the grids of ropeAppend and attend: a step with
     * more rows loops over them, so a large maxRows does not leave thousands of idle groups to
     * launch at batch 1.
     */
    static final int GRID_ROWS = 128;

    /** Floats one split leaves for the combine: running max, sum of exps, headDim unnormalised outputs. */
    static final int PARTIAL_HEADER = 2;

    private AttentionKernels() {
    }

    /** Work-groups of ropeAppend's grid: one per (row, head), up to GRID_ROWS rows. */
    static int ropeGroups(int maxRows, int numHeads) {
        return Math.min(maxRows, GRID_ROWS) * numHeads;
    }

    /** Work-groups of attend's grid: one per (row, head) up to GRID_ROWS rows, and MAX_SPLITS per head at least. */
    static int attendGroups(int maxRows, int numHeads) {
        return Math.min(Math.max(maxRows, MAX_SPLITS), GRID_ROWS) * numHeads;
    }

    /** Work-groups of combine's grid: a step splits only when its pairs fill at most half of attend's grid. */
    static int combineGroups(int maxRows, int numHeads) {
        return Math.max(1, attendGroups(maxRows, numHeads) / 2);
    }

    /** Floats of the partial results of one step's splits. */
    static int partialFloats(int maxRows, int numHeads, int headDim) {
        return attendGroups(maxRows, numHeads) * (headDim + PARTIAL_HEADER);
    }

    /** Fails unless attend handles this head_dim. */
    static void requireHeadDim(int headDim) {
        if (headDim > MAX_HEAD_DIM || headDim % 2 != 0) {
            throw new IllegalArgumentException("the TornadoVM attention kernels take an even head_dim of at most "
                    + MAX_HEAD_DIM + ", not " + headDim);
        }
    }

    /** Work-groups per (row, head) this step: groups / (rows * heads), within 1..MAX_SPLITS. */
    static int splits(int groups, int rows, int numHeads) {
        int pairs = imax(rows, 1) * numHeads;
        return imin(imax(groups / pairs, 1), MAX_SPLITS);
    }

    /** Positions per split for a row of keys positions: a multiple of TILE, at least MIN_SPLIT. */
    static int chunk(int keys, int splits) {
        int even = (keys + splits - 1) / splits;
        return imax((even + TILE - 1) / TILE * TILE, MIN_SPLIT);
    }

    /** max(a, b) without a branch (see LinearKernels on the shifts). */
    static int imax(int a, int b) {
        return a + LinearKernels.neg(a - b) * (b - a);
    }

    /** min(a, b) without a branch. */
    static int imin(int a, int b) {
        return a + LinearKernels.neg(b - a) * (b - a);
    }

    /**
     * Rotates q and k of every row with its cos/sin (SPEC 3.3: x * cos + rotate_half(x) * sin),
     * scales q by the row's logn factor, writes k and v into the row's KV slot and q back into
     * qkv. rot holds cos [R, half], then sin [R, half], then logn [R]. A work-group per (row,
     * head), one thread per rotated pair; the grid's {@code groups} groups loop over the pairs.
     */
    static void ropeAppend(KernelContext ctx, FloatArray qkv, FloatArray rot, FloatArray kv, IntArray meta, int slotsAt,
                           int maxRows, int numHeads, int headDim, int groups, int ls) {
        int half = headDim / 2;
        int d = numHeads * headDim;
        int pairs = meta.get(StepMeta.ROWS) * numHeads;
        for (int pair = ctx.groupIdx; pair < pairs; pair += groups) {
            int t = pair / numHeads;
            int h = pair - t * numHeads;
            int q = t * 3 * d + h * headDim;
            int slot = meta.get(slotsAt + t) + h * headDim;
            float logn = rot.get(2 * maxRows * half + t);
            for (int i = ctx.localIdx; i < half; i += ls) {
                float c = rot.get(t * half + i);
                float s = rot.get(maxRows * half + t * half + i);
                float qa = qkv.get(q + i);
                float qb = qkv.get(q + i + half);
                float ka = qkv.get(q + d + i);
                float kb = qkv.get(q + d + i + half);
                qkv.set(q + i, (qa * c - qb * s) * logn);
                qkv.set(q + i + half, (qb * c + qa * s) * logn);
                kv.set(slot + i, ka * c - kb * s);
                kv.set(slot + i + half, kb * c + ka * s);
            }
            for (int i = ctx.localIdx; i < headDim; i += ls) {
                kv.set(slot + PAGE * d + i, qkv.get(q + 2 * d + i));
            }
        }
    }

    /**
     * out[t, head] = softmax(q . K^T / sqrt(headDim)) V over positions 0..pos(t) of the row's
     * sequence. The step's work items are (row, head, split) triples, split fastest; group g
     * takes items g, g + groups, ... Each item's positions go through local memory a tile of TILE
     * keys and values at a time (all threads loading consecutive floats; rows padded by one float
     * against bank conflicts), ls / TILE threads per key score it, and an online softmax carries
     * (max, sum, output) from tile to tile, one output dimension per thread. A row whose
     * positions fit one split gets its normalised output here; otherwise each split leaves (max,
     * sum, unnormalised output) in part at item * (headDim + 2) for {@link #combine}. Needs
     * headDim at most MAX_HEAD_DIM and at most ls (one thread per output dimension), and ls a
     * multiple of TILE.
     */
    static void attend(KernelContext ctx, FloatArray qkv, FloatArray kv, FloatArray out, FloatArray part, IntArray meta,
                       int positionsAt, int pageBaseAt, int pageTableAt, int numHeads, int headDim, int groups, int ls) {
        float[] qs = ctx.allocateFloatLocalArray(MAX_HEAD_DIM);
        float[] ks = ctx.allocateFloatLocalArray(TILE * (MAX_HEAD_DIM + 1) + 1);
        float[] vs = ctx.allocateFloatLocalArray(TILE * (MAX_HEAD_DIM + 1) + 1);
        float[] red = ctx.allocateFloatLocalArray(ls);
        float[] sc = ctx.allocateFloatLocalArray(TILE);
        float[] pe = ctx.allocateFloatLocalArray(TILE);
        int lid = ctx.localIdx;
        int d = numHeads * headDim;
        int stride = headDim + 1;
        float scale = 1f / TornadoMath.sqrt(headDim);
        // Loading a tile, thread lid copies column lid % headDim of every perPass-th key from lid /
        // headDim on (threads past perPass * headDim start beyond the tile); four keys a pass so
        // eight loads are in flight. Keys past the tile are stored to the spare last element.
        int perPass = ls / headDim;
        int col = lid - lid / headDim * headDim;
        int first = lid / headDim + (1 - LinearKernels.live(lid, perPass * headDim)) * TILE;
        int spare = TILE * (MAX_HEAD_DIM + 1);
        int key = lid & (TILE - 1);
        int lane = lid / TILE;
        int lanes = ls / TILE;
        int dim = LinearKernels.clamp(lid, headDim);
        int rows = meta.get(StepMeta.ROWS);
        int splits = splits(groups, rows, numHeads);
        int items = rows * numHeads * splits;
        for (int w = ctx.groupIdx; w < items; w += groups) {
            int pair = w / splits;
            int s = w - pair * splits;
            int t = pair / numHeads;
            int h = pair - t * numHeads;
            int keys = meta.get(positionsAt + t) + 1;
            int chunk = chunk(keys, splits);
            int used = (keys + chunk - 1) / chunk;
            int start = s * chunk;
            int end = imin(start + chunk, keys);
            int tiles = (imax(end - start, 0) + TILE - 1) / TILE;
            int pages = pageTableAt + meta.get(pageBaseAt + t);
            for (int i = lid; i < headDim; i += ls) {
                qs[i] = qkv.get(t * 3 * d + h * headDim + i) * scale;
            }
            float m = -1e30f;
            float l = 0f;
            float acc = 0f;
            for (int tile = 0; tile < tiles; tile++) {
                int p0 = start + tile * TILE;
                int last = end - 1 - p0;
                int base = meta.get(pages + p0 / PAGE) * 2 * PAGE * d + (p0 % PAGE) * d + h * headDim;
                int lastKey = imin(last, TILE - 1);
                for (int k = first; k < TILE; k += 4 * perPass) {
                    int k1 = k + perPass;
                    int k2 = k1 + perPass;
                    int k3 = k2 + perPass;
                    int a0 = base + imin(k, lastKey) * d + col;
                    int a1 = base + imin(k1, lastKey) * d + col;
                    int a2 = base + imin(k2, lastKey) * d + col;
                    int a3 = base + imin(k3, lastKey) * d + col;
                    float key0 = kv.get(a0);
                    float key1 = kv.get(a1);
                    float key2 = kv.get(a2);
                    float key3 = kv.get(a3);
                    float value0 = kv.get(a0 + PAGE * d);
                    float value1 = kv.get(a1 + PAGE * d);
                    float value2 = kv.get(a2 + PAGE * d);
                    float value3 = kv.get(a3 + PAGE * d);
                    int l1 = LinearKernels.live(k1, TILE);
                    int l2 = LinearKernels.live(k2, TILE);
                    int l3 = LinearKernels.live(k3, TILE);
                    int s1 = l1 * (k1 * stride + col) + (1 - l1) * spare;
                    int s2 = l2 * (k2 * stride + col) + (1 - l2) * spare;
                    int s3 = l3 * (k3 * stride + col) + (1 - l3) * spare;
                    ks[k * stride + col] = key0;
                    vs[k * stride + col] = value0;
                    ks[s1] = key1;
                    vs[s1] = value1;
                    ks[s2] = key2;
                    vs[s2] = value2;
                    ks[s3] = key3;
                    vs[s3] = value3;
                }
                ctx.localBarrier();
                float dot = 0f;
                for (int j = lane; j < headDim; j += lanes) {
                    dot += qs[j] * ks[key * stride + j];
                }
                red[lid] = dot;
                ctx.localBarrier();
                if (lid < TILE) {
                    float score = 0f;
                    for (int j = 0; j < lanes; j++) {
                        score += red[j * TILE + lid];
                    }
                    int valid = LinearKernels.live(lid, last + 1);
                    sc[lid] = score * valid - (1 - valid) * 1e30f;
                }
                ctx.localBarrier();
                float top = m;
                for (int j = 0; j < TILE; j++) {
                    top = TornadoMath.max(top, sc[j]);
                }
                if (lid < TILE) {
                    pe[lid] = TornadoMath.exp(sc[lid] - top);
                }
                ctx.localBarrier();
                float alpha = TornadoMath.exp(m - top);
                float sum = 0f;
                float weighted = 0f;
                for (int j = 0; j < TILE; j++) {
                    float p = pe[j];
                    sum += p;
                    weighted += p * vs[j * stride + dim];
                }
                l = l * alpha + sum;
                acc = acc * alpha + weighted;
                m = top;
                ctx.localBarrier();
            }
            if (s < used) {
                if (used == 1) {
                    if (lid < headDim) {
                        out.set(t * d + h * headDim + lid, acc / l);
                    }
                } else {
                    int at = w * (headDim + PARTIAL_HEADER);
                    if (lid < headDim) {
                        part.set(at + PARTIAL_HEADER + lid, acc);
                    }
                    if (lid == 0) {
                        part.set(at, m);
                        part.set(at + 1, l);
                    }
                }
            }
        }
    }

    /**
     * Merges the splits of each (row, head) that attend split: out = sum_s exp(m_s - M) o_s /
     * sum_s exp(m_s - M) l_s, M the largest m_s; one work-group per (row, head), one thread per
     * output dimension. Pairs attend finished itself (one split's worth of positions, or a step
     * with too many rows to split) are left alone.
     */
    static void combine(KernelContext ctx, FloatArray part, FloatArray out, IntArray meta, int positionsAt,
                        int numHeads, int headDim, int groups, int ls) {
        int pair = ctx.groupIdx;
        int rows = meta.get(StepMeta.ROWS);
        int splits = splits(groups, rows, numHeads);
        int row = pair / numHeads;
        int h = pair - row * numHeads;
        int t = LinearKernels.clamp(row, rows);
        int keys = (meta.get(positionsAt + t) + 1) * LinearKernels.live(row, rows);
        int chunk = chunk(keys, splits);
        int used = (keys + chunk - 1) / chunk;
        if (used > 1) {
            int width = headDim + PARTIAL_HEADER;
            int first = pair * splits * width;
            float top = -1e30f;
            for (int s = 0; s < used; s++) {
                top = TornadoMath.max(top, part.get(first + s * width));
            }
            float den = 0f;
            for (int s = 0; s < used; s++) {
                den += TornadoMath.exp(part.get(first + s * width) - top) * part.get(first + s * width + 1);
            }
            for (int i = ctx.localIdx; i < headDim; i += ls) {
                float num = 0f;
                for (int s = 0; s < used; s++) {
                    int at = first + s * width;
                    num += TornadoMath.exp(part.get(at) - top) * part.get(at + PARTIAL_HEADER + i);
                }
                out.set(t * numHeads * headDim + h * headDim + i, num / den);
            }
        }
    }
}
