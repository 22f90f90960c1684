package qwen.service.backend.tornado;

import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.math.TornadoMath;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

/**
 * Matrix times a batch of rows with fp16 weights and f32 accumulation; the references are
 * {@code ScalarKernels.matmul}, {@code addBias}, {@code add} and {@code siluMul}.
 *
 * <p>One work-group of {@code ls} threads per output feature r: the threads stride along the
 * weight row (coalesced loads), each weight element is read once per tile of {@link #TILE} token
 * rows, and the per-thread sums are reduced in local memory. The row count is read from the step
 * meta, so one compiled kernel serves batch 1 (a plain matrix-vector product) and prefill.
 */
final class LinearKernels {

    /** Token rows that share one pass over a weight row. */
    static final int TILE = 4;

    private LinearKernels() {
    }

    /**
     * fp16 bits to f32 with plain arithmetic: weights travel as raw fp16 bits and are decoded here,
     * so one kernel runs on devices with and without a half type (PoCL on CPUs has none) and
     * TornadoVM's OpenCL backend, which cannot reinterpret bits, compiles it. Normal and subnormal
     * values decode exactly (2^e is built from the exponent's bits, every factor a power of two);
     * infinities and NaN never occur because {@link DeviceWeights} rejects them.
     */
    static float half(short bits) {
        int h = bits & 0xFFFF;
        int e = (h >> 10) & 0x1F;
        int subnormal = ((e - 1) >> 31) & 1;     // 1 when e == 0: exponent 1, no implicit leading 1
        int en = e + subnormal;
        float pow2 = (1f + (en & 1)) * (1f + 3f * ((en >> 1) & 1)) * (1f + 15f * ((en >> 2) & 1))
                * (1f + 255f * ((en >> 3) & 1)) * (1f + 65535f * ((en >> 4) & 1));
        float magnitude = (1 - subnormal + (h & 0x3FF) * 0.0009765625f) * pow2 * 3.0517578125e-5f;
        return magnitude * (1 - 2 * ((h >> 15) & 1));
    }

    /*
     * Integer tricks below avoid what TornadoVM 5.2's OpenCL code generation gets wrong: Math.min/max
     * on ints (ambiguous for PoCL), >>> (emitted as a signed shift), -(x >> 31) (negation dropped)
     * and values merged after if/else. The kernel tests catch each of them.
     */

    /** min(t, count - 1) without a branch. */
    static int clamp(int t, int count) {
        return t + ((count - 1 - t) >> 31) * (t - count + 1);
    }

    /** 1 when row t is below count, else 0, without a branch. */
    static int live(int t, int count) {
        return 1 - (((count - 1 - t) >> 31) & 1);
    }

    /**
     * y[t, r] = (accumulate ? y[t, r] : 0) + (hasBias ? bias[r] : 0) + W[r, :] . x[t, :] for rows
     * t &lt; meta[countSlot]. W is [rows, cols], x [T, cols], y [T, rows].
     */
    static void linear(KernelContext ctx, ShortArray w, FloatArray x, FloatArray y, FloatArray bias, IntArray meta,
                       int countSlot, int cols, int rows, int hasBias, int accumulate, int ls) {
        int r = ctx.groupIdx;
        int lid = ctx.localIdx;
        float[] acc = ctx.allocateFloatLocalArray(ls * TILE);
        int count = meta.get(countSlot);
        int wBase = r * cols;
        for (int tb = 0; tb < count; tb += TILE) {
            int t1 = clamp(tb + 1, count);
            int t2 = clamp(tb + 2, count);
            int t3 = clamp(tb + 3, count);
            float s0 = 0f;
            float s1 = 0f;
            float s2 = 0f;
            float s3 = 0f;
            for (int j = lid; j < cols; j += ls) {
                float wv = half(w.get(wBase + j));
                s0 += wv * x.get(tb * cols + j);
                s1 += wv * x.get(t1 * cols + j);
                s2 += wv * x.get(t2 * cols + j);
                s3 += wv * x.get(t3 * cols + j);
            }
            acc[lid] = s0;
            acc[ls + lid] = s1;
            acc[2 * ls + lid] = s2;
            acc[3 * ls + lid] = s3;
            ctx.localBarrier();
            for (int stride = ls / 2; stride > 0; stride >>= 1) {
                if (lid < stride) {
                    acc[lid] += acc[lid + stride];
                    acc[ls + lid] += acc[ls + lid + stride];
                    acc[2 * ls + lid] += acc[2 * ls + lid + stride];
                    acc[3 * ls + lid] += acc[3 * ls + lid + stride];
                }
                ctx.localBarrier();
            }
            if (lid < TILE && tb + lid < count) {
                int out = (tb + lid) * rows + r;
                float v = acc[lid * ls];
                if (hasBias == 1) {
                    v += bias.get(r);
                }
                if (accumulate == 1) {
                    v += y.get(out);
                }
                y.set(out, v);
            }
            ctx.localBarrier();
        }
    }

    /**
     * Qwen's MLP inner product: h[t, r] = (w1[r] . x[t]) * silu(w2[r] . x[t]), SiLU on the w2
     * branch. Both weight rows are read once per tile of two token rows.
     */
    static void gated(KernelContext ctx, ShortArray w1, ShortArray w2, FloatArray x, FloatArray h, IntArray meta,
                      int cols, int rows, int ls) {
        int r = ctx.groupIdx;
        int lid = ctx.localIdx;
        float[] acc = ctx.allocateFloatLocalArray(ls * TILE);
        int count = meta.get(StepMeta.ROWS);
        int wBase = r * cols;
        for (int tb = 0; tb < count; tb += 2) {
            int t1 = clamp(tb + 1, count);
            float a0 = 0f;
            float g0 = 0f;
            float a1 = 0f;
            float g1 = 0f;
            for (int j = lid; j < cols; j += ls) {
                float u = half(w1.get(wBase + j));
                float v = half(w2.get(wBase + j));
                float x0 = x.get(tb * cols + j);
                float x1 = x.get(t1 * cols + j);
                a0 += u * x0;
                g0 += v * x0;
                a1 += u * x1;
                g1 += v * x1;
            }
            acc[lid] = a0;
            acc[ls + lid] = g0;
            acc[2 * ls + lid] = a1;
            acc[3 * ls + lid] = g1;
            ctx.localBarrier();
            for (int stride = ls / 2; stride > 0; stride >>= 1) {
                if (lid < stride) {
                    acc[lid] += acc[lid + stride];
                    acc[ls + lid] += acc[ls + lid + stride];
                    acc[2 * ls + lid] += acc[2 * ls + lid + stride];
                    acc[3 * ls + lid] += acc[3 * ls + lid + stride];
                }
                ctx.localBarrier();
            }
            if (lid < 2 && tb + lid < count) {
                float up = acc[2 * lid * ls];
                float gate = acc[(2 * lid + 1) * ls];
                h.set((tb + lid) * rows + r, up * (gate / (1f + TornadoMath.exp(-gate))));
            }
            ctx.localBarrier();
        }
    }
}
