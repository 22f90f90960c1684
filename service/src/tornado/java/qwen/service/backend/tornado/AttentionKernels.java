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
 */
final class AttentionKernels {

    /** Positions per device page (as {@code KvPool.PAGE_TOKENS}). */
    static final int PAGE = 64;

    private AttentionKernels() {
    }

    /**
     * Rotates q and k of every row with its cos/sin (SPEC 3.3: x * cos + rotate_half(x) * sin),
     * scales q by the row's logn factor, writes k and v into the row's KV slot and q back into
     * qkv. rot holds cos [R, half], then sin [R, half], then logn [R]. One work-group per row.
     */
    static void ropeAppend(KernelContext ctx, FloatArray qkv, FloatArray rot, FloatArray kv, IntArray meta, int slotsAt,
                           int maxRows, int numHeads, int headDim, int ls) {
        int t = ctx.groupIdx;
        if (t < meta.get(StepMeta.ROWS)) {
            int half = headDim / 2;
            int d = numHeads * headDim;
            int row = t * 3 * d;
            int slot = meta.get(slotsAt + t);
            float logn = rot.get(2 * maxRows * half + t);
            for (int idx = ctx.localIdx; idx < numHeads * half; idx += ls) {
                int h = idx / half;
                int i = idx - h * half;
                float c = rot.get(t * half + i);
                float s = rot.get(maxRows * half + t * half + i);
                int q = row + h * headDim + i;
                float qa = qkv.get(q);
                float qb = qkv.get(q + half);
                qkv.set(q, (qa * c - qb * s) * logn);
                qkv.set(q + half, (qb * c + qa * s) * logn);
                int k = q + d;
                float ka = qkv.get(k);
                float kb = qkv.get(k + half);
                kv.set(slot + h * headDim + i, ka * c - kb * s);
                kv.set(slot + h * headDim + i + half, kb * c + ka * s);
            }
            for (int i = ctx.localIdx; i < d; i += ls) {
                kv.set(slot + PAGE * d + i, qkv.get(row + 2 * d + i));
            }
        }
    }

    /**
     * out[t, head] = softmax(q . K^T / sqrt(headDim)) V over positions 0..pos(t) of the row's
     * sequence: one work-group per (row, head); scores live in local memory (maxContext floats).
     */
    static void attend(KernelContext ctx, FloatArray qkv, FloatArray kv, FloatArray out, IntArray meta, int positionsAt,
                       int pageBaseAt, int pageTableAt, int numHeads, int headDim, int maxContext, int ls) {
        int g = ctx.groupIdx;
        int lid = ctx.localIdx;
        float[] scores = ctx.allocateFloatLocalArray(maxContext);
        float[] red = ctx.allocateFloatLocalArray(ls);
        int t = g / numHeads;
        int h = g - t * numHeads;
        int d = numHeads * headDim;
        int active = LinearKernels.live(t, meta.get(StepMeta.ROWS));
        int keys = (meta.get(positionsAt + t) + 1) * active;
        int pages = pageTableAt + meta.get(pageBaseAt + t);
        int q = t * 3 * d + h * headDim;
        float scale = 1f / TornadoMath.sqrt(headDim);
        float max = -1e30f;
        for (int p = lid; p < keys; p += ls) {
            int base = meta.get(pages + p / PAGE) * 2 * PAGE * d + (p % PAGE) * d + h * headDim;
            float dot = 0f;
            for (int i = 0; i < headDim; i++) {
                dot += qkv.get(q + i) * kv.get(base + i);
            }
            float s = dot * scale;
            scores[p] = s;
            max = TornadoMath.max(max, s);
        }
        red[lid] = max;
        ctx.localBarrier();
        for (int stride = ls / 2; stride > 0; stride >>= 1) {
            if (lid < stride) {
                red[lid] = TornadoMath.max(red[lid], red[lid + stride]);
            }
            ctx.localBarrier();
        }
        max = red[0];
        ctx.localBarrier();
        float sum = 0f;
        for (int p = lid; p < keys; p += ls) {
            float e = TornadoMath.exp(scores[p] - max);
            scores[p] = e;
            sum += e;
        }
        red[lid] = sum;
        ctx.localBarrier();
        for (int stride = ls / 2; stride > 0; stride >>= 1) {
            if (lid < stride) {
                red[lid] += red[lid + stride];
            }
            ctx.localBarrier();
        }
        float total = red[0];
        for (int i = lid; i < headDim * active; i += ls) {
            float acc = 0f;
            for (int p = 0; p < keys; p++) {
                int base = meta.get(pages + p / PAGE) * 2 * PAGE * d + PAGE * d + (p % PAGE) * d + h * headDim;
                acc += scores[p] * kv.get(base + i);
            }
            out.set(t * d + h * headDim + i, acc / total);
        }
    }
}
