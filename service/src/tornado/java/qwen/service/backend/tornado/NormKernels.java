package qwen.service.backend.tornado;

import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.math.TornadoMath;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

/** RMSNorm on the device; the reference is {@code ScalarKernels.rmsnorm}. */
final class NormKernels {

    private NormKernels() {
    }

    /**
     * out[t] = x[t] * weight / sqrt(mean(x[t]^2) + eps) for rows t &lt; meta[countSlot]: one
     * work-group of {@code ls} threads per row, f32 sums reduced in local memory.
     */
    static void rmsnorm(KernelContext ctx, FloatArray x, FloatArray weight, FloatArray out, IntArray meta,
                        int countSlot, int d, float eps, int ls) {
        int t = ctx.groupIdx;
        int lid = ctx.localIdx;
        float[] acc = ctx.allocateFloatLocalArray(ls);
        int active = LinearKernels.live(t, meta.get(countSlot));
        int n = d * active;
        int base = t * d;
        float s = 0f;
        for (int i = lid; i < n; i += ls) {
            float v = x.get(base + i);
            s += v * v;
        }
        acc[lid] = s;
        ctx.localBarrier();
        for (int stride = ls / 2; stride > 0; stride >>= 1) {
            if (lid < stride) {
                acc[lid] += acc[lid + stride];
            }
            ctx.localBarrier();
        }
        float scale = 1f / TornadoMath.sqrt(acc[0] / d + eps);
        for (int i = lid; i < n; i += ls) {
            out.set(base + i, x.get(base + i) * scale * weight.get(i));
        }
    }
}
