package qwen.service.backend.tornado;

import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.math.TornadoMath;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;

/**
 * Matrix times a batch of rows with fp16 weights and f32 accumulation, with the RMSNorm that
 * precedes the matrix in the model fused in; the references are {@code ScalarKernels.rmsnorm},
 * {@code matmul}, {@code addBias}, {@code add} and {@code siluMul}.
 *
 * <p>The norm folds into the product: W (g * x * s) = s * (W (g * x)) with s = 1 / rms(x), and
 * sum(x^2) is gathered in the same pass that reads x, so a norm costs no task and no pass of its
 * own. Each kernel has two ways through, picked per step by the row count against
 * {@code meta[TILED_FROM]} (the same for every thread, so the branch never diverges):
 * <ul>
 *   <li><b>rows</b> (decode): one work-group per output feature; the threads stride along the
 *       weight row (coalesced loads) for one token row (batch 1 has a loop of its own) or up to
 *       {@link #TILE} at once, and the sums meet in local memory. Weight traffic is what limits it,
 *       as a matrix-vector product should be.
 *   <li><b>tiled</b> (prefill, large batches): a work-group computes a {@link #TF} x {@link #TT}
 *       block of features x tokens; each {@link #KC}-wide slice of weights (decoded once) and of
 *       activations is staged in local memory and every thread accumulates 2 x 2 outputs from it,
 *       so a weight is read from memory once per 16 tokens instead of once per 4. Blocks this
 *       small keep enough work-groups in flight at 32-64 rows to fill the device.
 * </ul>
 * The grid is sized for the rows way ({@code rows} groups); the tiled way needs fewer and the
 * rest exit at once. Both assume {@link LayerGraphs#LOCAL} = 128 threads per group.
 */
final class LinearKernels {

    /** Token rows that share one pass over a weight row in the rows way. */
    static final int TILE = 4;
    /** Features per tiled block. */
    static final int TF = 32;
    /** Tokens per tiled block. */
    static final int TT = 16;
    /** Columns per staged slice. */
    static final int KC = 32;
    /** Local strides of the staged slices, padded by one so a column write hits distinct banks. */
    private static final int WS = TF + 1;
    private static final int XS = TT + 1;

    private LinearKernels() {
    }

    /** Floats in a work-group's fp16 decode table ({@link #tableEntry}): 64 steps, then 64 bases; one per thread. */
    static final int HALF_TABLE = 128;

    /**
     * fp16 bits to f32 with plain arithmetic: weights travel as raw fp16 bits and are decoded here,
     * so one kernel runs on devices with and without a half type (PoCL on CPUs has none) and
     * TornadoVM's OpenCL backend, which cannot reinterpret bits, compiles it. Normal and subnormal
     * values decode exactly (2^e is built from the exponent's bits, every factor a power of two);
     * infinities and NaN never occur because {@link DeviceWeights} rejects them. About 40
     * operations: the linear kernels use it only to fill their decode table ({@link #tableEntry}).
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

    /**
     * The fp16 decode table of a work-group: each kernel fills its own local copy, thread i entry
     * i, before a barrier. Entry i &lt; 64 (the top six bits of an fp16: sign and exponent) holds the
     * value of one mantissa step, and entry 64 + i the value with a zero mantissa, so that
     * fp16 = mantissa * step + base: exact, since the product has at most 10 significant bits and
     * the sum is the fp16 value itself. A weight then costs a mask, a shift, two local loads and a
     * multiply-add, where {@link #half} spends about 40 operations: decoding, not memory, was what
     * bounded the kernels. The loads are written out in each kernel: a local array handed to a
     * helper method is addressed as a heap array after inlining (byte offset past an object
     * header), which TornadoVM 5.2 emits as an element index. The fill has no branch: an
     * {@code if (lid < 64)} here let Graal merge it with a later loop's identical bound (cols = 64)
     * into the if/else merge TornadoVM's OpenCL code generation gets wrong. The kernel tests catch
     * both.
     */
    static float tableEntry(int lid) {
        short top = (short) ((lid & 63) << 10);
        float step = half((short) (top + 1)) - half(top);
        return step + (half(top) - step) * (lid >> 6);     // exact: both sums are fp16 values
    }

    /** Table index of fp16 bits: sign and exponent. */
    static int hi(short bits) {
        return (bits >> 10) & 63;
    }

    /*
     * Integer tricks below avoid what TornadoVM 5.2's OpenCL code generation gets wrong: Math.min/max
     * on ints (ambiguous for PoCL), >>> (emitted as a signed shift), -(x >> 31) (negation dropped)
     * and values merged after if/else; also a running sum kept in a local-memory element and
     * read back each iteration, which came out counting one slice only. The kernel tests catch each.
     */

    /** min(t, count - 1) without a branch. */
    static int clamp(int t, int count) {
        return t + ((count - 1 - t) >> 31) * (t - count + 1);
    }

    /** 1 when row t is below count, else 0, without a branch. */
    static int live(int t, int count) {
        return 1 - (((count - 1 - t) >> 31) & 1);
    }

    /** The norm's gain for column k: g[k] when normed, else 1 (g then holds one unused element). */
    static float gain(FloatArray g, int k, int normed) {
        return g.get(k * normed) * normed + (1 - normed);
    }

    /** 1 / sqrt(sumSq / cols + eps) when normed, else 1. */
    static float rms(float sumSq, int cols, float eps, int normed) {
        return normed / TornadoMath.sqrt(sumSq / cols + eps) + (1 - normed);
    }

    /** Writes one output: y = v (+ bias[r]) (+ y), for a feature and token inside the matrix and step. */
    static void put(FloatArray y, FloatArray bias, int t, int r, int rows, int count, float v, int hasBias, int accumulate) {
        if (r < rows && t < count) {
            int out = t * rows + r;
            y.set(out, v + bias.get(r * hasBias) * hasBias + y.get(out) * accumulate);
        }
    }

    /** Writes one MLP output: h = up * silu(gate), for a feature and token inside the matrix and step. */
    static void putGated(FloatArray h, int t, int r, int rows, int count, float up, float gate) {
        if (r < rows && t < count) {
            h.set(t * rows + r, up * (gate / (1f + TornadoMath.exp(-gate))));
        }
    }

    /**
     * y[t, r] = (accumulate ? y[t, r] : 0) + (hasBias ? bias[r] : 0) + W[r, :] . n(x[t, :]) for
     * rows t &lt; meta[countSlot], where n is RMSNorm with gain g and eps when normed, else the
     * identity. W is [rows, cols], x [T, cols], y [T, rows].
     */
    static void linear(KernelContext ctx, ShortArray w, FloatArray x, FloatArray y, FloatArray bias, FloatArray g,
                       IntArray meta, int countSlot, int cols, int rows, int hasBias, int accumulate, int normed,
                       float eps, int ls) {
        int lid = ctx.localIdx;
        float[] ws = ctx.allocateFloatLocalArray(KC * WS);
        float[] xs = ctx.allocateFloatLocalArray(KC * XS);
        float[] sq = ctx.allocateFloatLocalArray(TT);
        float[] dec = ctx.allocateFloatLocalArray(HALF_TABLE);
        dec[lid] = tableEntry(lid);
        ctx.localBarrier();
        int count = meta.get(countSlot);
        if (count == 1) {
            int r = ctx.groupIdx;
            int wBase = r * cols;
            float s = 0f;
            float q = 0f;
            for (int j = lid; j < cols; j += 4 * ls) {
                // four independent loads in flight per thread: one 2-byte load at a time leaves the
                // memory system idle waiting (latency-bound, not bandwidth-bound)
                int j1 = clamp(j + ls, cols);
                int j2 = clamp(j + 2 * ls, cols);
                int j3 = clamp(j + 3 * ls, cols);
                float x0 = x.get(j);
                float x1 = x.get(j1) * live(j + ls, cols);
                float x2 = x.get(j2) * live(j + 2 * ls, cols);
                float x3 = x.get(j3) * live(j + 3 * ls, cols);
                short w0b = w.get(wBase + j);
                int w0i = hi(w0b);
                float w0 = (w0b & 0x3FF) * dec[w0i] + dec[64 + w0i];
                short w1b = w.get(wBase + j1);
                int w1i = hi(w1b);
                float w1 = (w1b & 0x3FF) * dec[w1i] + dec[64 + w1i];
                short w2b = w.get(wBase + j2);
                int w2i = hi(w2b);
                float w2 = (w2b & 0x3FF) * dec[w2i] + dec[64 + w2i];
                short w3b = w.get(wBase + j3);
                int w3i = hi(w3b);
                float w3 = (w3b & 0x3FF) * dec[w3i] + dec[64 + w3i];
                s += w0 * gain(g, j, normed) * x0 + w1 * gain(g, j1, normed) * x1 + w2 * gain(g, j2, normed) * x2
                        + w3 * gain(g, j3, normed) * x3;
                q += x0 * x0 + x1 * x1 + x2 * x2 + x3 * x3;
            }
            ws[lid] = s;
            ws[ls + lid] = q;
            ctx.localBarrier();
            for (int stride = ls / 2; stride > 0; stride >>= 1) {
                if (lid < stride) {
                    ws[lid] += ws[lid + stride];
                    ws[ls + lid] += ws[ls + lid + stride];
                }
                ctx.localBarrier();
            }
            if (lid == 0) {
                put(y, bias, 0, r, rows, 1, ws[0] * rms(ws[ls], cols, eps, normed), hasBias, accumulate);
            }
            ctx.localBarrier();     // every thread meets here: PoCL miscompiled the path without it
        } else if (count < meta.get(StepMeta.TILED_FROM)) {
            int r = ctx.groupIdx;
            int wBase = r * cols;
            for (int tb = 0; tb < count; tb += TILE) {
                int t1 = clamp(tb + 1, count);
                int t2 = clamp(tb + 2, count);
                int t3 = clamp(tb + 3, count);
                float s0 = 0f;
                float s1 = 0f;
                float s2 = 0f;
                float s3 = 0f;
                float q0 = 0f;
                float q1 = 0f;
                float q2 = 0f;
                float q3 = 0f;
                for (int j = lid; j < cols; j += ls) {
                    short wdb = w.get(wBase + j);
                    int wdi = hi(wdb);
                    float wd = (wdb & 0x3FF) * dec[wdi] + dec[64 + wdi];
                    float wv = wd * gain(g, j, normed);
                    float x0 = x.get(tb * cols + j);
                    float x1 = x.get(t1 * cols + j);
                    float x2 = x.get(t2 * cols + j);
                    float x3 = x.get(t3 * cols + j);
                    s0 += wv * x0;
                    s1 += wv * x1;
                    s2 += wv * x2;
                    s3 += wv * x3;
                    q0 += x0 * x0;
                    q1 += x1 * x1;
                    q2 += x2 * x2;
                    q3 += x3 * x3;
                }
                ws[lid] = s0;
                ws[ls + lid] = s1;
                ws[2 * ls + lid] = s2;
                ws[3 * ls + lid] = s3;
                ws[4 * ls + lid] = q0;
                ws[5 * ls + lid] = q1;
                ws[6 * ls + lid] = q2;
                ws[7 * ls + lid] = q3;
                ctx.localBarrier();
                for (int stride = ls / 2; stride > 0; stride >>= 1) {
                    if (lid < stride) {
                        for (int a = 0; a < 2 * TILE; a++) {
                            ws[a * ls + lid] += ws[a * ls + lid + stride];
                        }
                    }
                    ctx.localBarrier();
                }
                if (lid < TILE) {
                    put(y, bias, tb + lid, r, rows, count, ws[lid * ls] * rms(ws[(TILE + lid) * ls], cols, eps, normed),
                            hasBias, accumulate);
                }
                ctx.localBarrier();
            }
        } else {
            int tilesF = (rows + TF - 1) / TF;
            int blk = ctx.groupIdx;
            if (blk < tilesF * ((count + TT - 1) / TT)) {
                int f0 = (blk % tilesF) * TF;
                int t0 = (blk / tilesF) * TT;
                int tf = lid & 15;
                int tt = lid >> 4;
                float a00 = 0f;
                float a01 = 0f;
                float a10 = 0f;
                float a11 = 0f;
                float ss = 0f;     // sum of x^2 of token lid & 15, kept by every thread: no branch to merge
                for (int k0 = 0; k0 < cols; k0 += KC) {
                    for (int e = lid; e < TF * KC; e += 128) {
                        int k = k0 + (e & 31);
                        int kc = clamp(k, cols);
                        short wdb = w.get(clamp(f0 + (e >> 5), rows) * cols + kc);
                        int wdi = hi(wdb);
                        float wd = (wdb & 0x3FF) * dec[wdi] + dec[64 + wdi];
                        ws[(e & 31) * WS + (e >> 5)] = wd
                                * gain(g, kc, normed) * live(k, cols);
                    }
                    for (int e = lid; e < TT * KC; e += 128) {
                        int k = k0 + (e & 31);
                        xs[(e & 31) * XS + (e >> 5)] = x.get(clamp(t0 + (e >> 5), count) * cols + clamp(k, cols)) * live(k, cols);
                    }
                    ctx.localBarrier();
                    for (int kk = 0; kk < KC; kk++) {
                        float v = xs[kk * XS + (lid & 15)];
                        ss += v * v;
                        float w0 = ws[kk * WS + tf];
                        float w1 = ws[kk * WS + tf + 16];
                        float x0 = xs[kk * XS + tt];
                        float x1 = xs[kk * XS + tt + 8];
                        a00 += w0 * x0;
                        a01 += w0 * x1;
                        a10 += w1 * x0;
                        a11 += w1 * x1;
                    }
                    ctx.localBarrier();
                }
                if (lid < TT) {
                    sq[lid] = ss;
                }
                ctx.localBarrier();
                float s0 = rms(sq[tt], cols, eps, normed);
                float s1 = rms(sq[tt + 8], cols, eps, normed);
                int f = f0 + tf;
                int t = t0 + tt;
                put(y, bias, t, f, rows, count, a00 * s0, hasBias, accumulate);
                put(y, bias, t + 8, f, rows, count, a01 * s1, hasBias, accumulate);
                put(y, bias, t, f + 16, rows, count, a10 * s0, hasBias, accumulate);
                put(y, bias, t + 8, f + 16, rows, count, a11 * s1, hasBias, accumulate);
            }
        }
    }

    /**
     * Qwen's MLP inner product on normed rows: h[t, r] = (w1[r] . n(x[t])) * silu(w2[r] . n(x[t])),
     * SiLU on the w2 branch, n the RMSNorm with gain g (ln_2). The rows way reads both weight rows
     * once per one or two token rows; the tiled way stages both slices.
     */
    static void gated(KernelContext ctx, ShortArray w1, ShortArray w2, FloatArray x, FloatArray h, FloatArray g,
                      IntArray meta, int cols, int rows, float eps, int ls) {
        int lid = ctx.localIdx;
        float[] us = ctx.allocateFloatLocalArray(KC * WS);
        float[] vs = ctx.allocateFloatLocalArray(KC * WS);
        float[] xs = ctx.allocateFloatLocalArray(KC * XS);
        float[] sq = ctx.allocateFloatLocalArray(TT);
        float[] dec = ctx.allocateFloatLocalArray(HALF_TABLE);
        dec[lid] = tableEntry(lid);
        ctx.localBarrier();
        int count = meta.get(StepMeta.ROWS);
        if (count == 1) {
            int r = ctx.groupIdx;
            int wBase = r * cols;
            float a = 0f;
            float b = 0f;
            float q = 0f;
            for (int j = lid; j < cols; j += 2 * ls) {
                int j1 = clamp(j + ls, cols);
                float x0 = x.get(j);
                float x1 = x.get(j1) * live(j + ls, cols);
                float gx0 = g.get(j) * x0;
                float gx1 = g.get(j1) * x1;
                short u0b = w1.get(wBase + j);
                int u0i = hi(u0b);
                float u0 = (u0b & 0x3FF) * dec[u0i] + dec[64 + u0i];
                short u1b = w1.get(wBase + j1);
                int u1i = hi(u1b);
                float u1 = (u1b & 0x3FF) * dec[u1i] + dec[64 + u1i];
                short v0b = w2.get(wBase + j);
                int v0i = hi(v0b);
                float v0 = (v0b & 0x3FF) * dec[v0i] + dec[64 + v0i];
                short v1b = w2.get(wBase + j1);
                int v1i = hi(v1b);
                float v1 = (v1b & 0x3FF) * dec[v1i] + dec[64 + v1i];
                a += u0 * gx0 + u1 * gx1;
                b += v0 * gx0 + v1 * gx1;
                q += x0 * x0 + x1 * x1;
            }
            us[lid] = a;
            us[ls + lid] = b;
            us[2 * ls + lid] = q;
            ctx.localBarrier();
            for (int stride = ls / 2; stride > 0; stride >>= 1) {
                if (lid < stride) {
                    us[lid] += us[lid + stride];
                    us[ls + lid] += us[ls + lid + stride];
                    us[2 * ls + lid] += us[2 * ls + lid + stride];
                }
                ctx.localBarrier();
            }
            if (lid == 0) {
                float s = rms(us[2 * ls], cols, eps, 1);
                putGated(h, 0, r, rows, 1, us[0] * s, us[ls] * s);
            }
            ctx.localBarrier();
        } else if (count < meta.get(StepMeta.TILED_FROM)) {
            int r = ctx.groupIdx;
            int wBase = r * cols;
            for (int tb = 0; tb < count; tb += 2) {
                int t1 = clamp(tb + 1, count);
                float a0 = 0f;
                float g0 = 0f;
                float a1 = 0f;
                float g1 = 0f;
                float q0 = 0f;
                float q1 = 0f;
                for (int j = lid; j < cols; j += ls) {
                    float gj = g.get(j);
                    short udb = w1.get(wBase + j);
                    int udi = hi(udb);
                    float ud = (udb & 0x3FF) * dec[udi] + dec[64 + udi];
                    short vdb = w2.get(wBase + j);
                    int vdi = hi(vdb);
                    float vd = (vdb & 0x3FF) * dec[vdi] + dec[64 + vdi];
                    float u = ud * gj;
                    float v = vd * gj;
                    float x0 = x.get(tb * cols + j);
                    float x1 = x.get(t1 * cols + j);
                    a0 += u * x0;
                    g0 += v * x0;
                    a1 += u * x1;
                    g1 += v * x1;
                    q0 += x0 * x0;
                    q1 += x1 * x1;
                }
                us[lid] = a0;
                us[ls + lid] = g0;
                us[2 * ls + lid] = a1;
                us[3 * ls + lid] = g1;
                us[4 * ls + lid] = q0;
                us[5 * ls + lid] = q1;
                ctx.localBarrier();
                for (int stride = ls / 2; stride > 0; stride >>= 1) {
                    if (lid < stride) {
                        for (int a = 0; a < 6; a++) {
                            us[a * ls + lid] += us[a * ls + lid + stride];
                        }
                    }
                    ctx.localBarrier();
                }
                if (lid < 2) {
                    float s = rms(us[(4 + lid) * ls], cols, eps, 1);
                    putGated(h, tb + lid, r, rows, count, us[2 * lid * ls] * s, us[(2 * lid + 1) * ls] * s);
                }
                ctx.localBarrier();
            }
        } else {
            int tilesF = (rows + TF - 1) / TF;
            int blk = ctx.groupIdx;
            if (blk < tilesF * ((count + TT - 1) / TT)) {
                int f0 = (blk % tilesF) * TF;
                int t0 = (blk / tilesF) * TT;
                int tf = lid & 15;
                int tt = lid >> 4;
                float u00 = 0f;
                float u01 = 0f;
                float u10 = 0f;
                float u11 = 0f;
                float v00 = 0f;
                float v01 = 0f;
                float v10 = 0f;
                float v11 = 0f;
                float ss = 0f;
                for (int k0 = 0; k0 < cols; k0 += KC) {
                    for (int e = lid; e < TF * KC; e += 128) {
                        int k = k0 + (e & 31);
                        int kc = clamp(k, cols);
                        int at = clamp(f0 + (e >> 5), rows) * cols + kc;
                        float gk = g.get(kc) * live(k, cols);
                        short udb = w1.get(at);
                        int udi = hi(udb);
                        float ud = (udb & 0x3FF) * dec[udi] + dec[64 + udi];
                        short vdb = w2.get(at);
                        int vdi = hi(vdb);
                        float vd = (vdb & 0x3FF) * dec[vdi] + dec[64 + vdi];
                        us[(e & 31) * WS + (e >> 5)] = ud * gk;
                        vs[(e & 31) * WS + (e >> 5)] = vd * gk;
                    }
                    for (int e = lid; e < TT * KC; e += 128) {
                        int k = k0 + (e & 31);
                        xs[(e & 31) * XS + (e >> 5)] = x.get(clamp(t0 + (e >> 5), count) * cols + clamp(k, cols)) * live(k, cols);
                    }
                    ctx.localBarrier();
                    for (int kk = 0; kk < KC; kk++) {
                        float v = xs[kk * XS + (lid & 15)];
                        ss += v * v;
                        float x0 = xs[kk * XS + tt];
                        float x1 = xs[kk * XS + tt + 8];
                        float p = us[kk * WS + tf];
                        u00 += p * x0;
                        u01 += p * x1;
                        p = us[kk * WS + tf + 16];
                        u10 += p * x0;
                        u11 += p * x1;
                        p = vs[kk * WS + tf];
                        v00 += p * x0;
                        v01 += p * x1;
                        p = vs[kk * WS + tf + 16];
                        v10 += p * x0;
                        v11 += p * x1;
                    }
                    ctx.localBarrier();
                }
                if (lid < TT) {
                    sq[lid] = ss;
                }
                ctx.localBarrier();
                float s0 = rms(sq[tt], cols, eps, 1);
                float s1 = rms(sq[tt + 8], cols, eps, 1);
                int f = f0 + tf;
                int t = t0 + tt;
                putGated(h, t, f, rows, count, u00 * s0, v00 * s0);
                putGated(h, t + 8, f, rows, count, u01 * s1, v01 * s1);
                putGated(h, t, f + 16, rows, count, u10 * s0, v10 * s0);
                putGated(h, t + 8, f + 16, rows, count, u11 * s1, v11 * s1);
            }
        }
    }
}
