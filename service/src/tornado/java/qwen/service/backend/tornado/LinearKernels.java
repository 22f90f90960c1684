package qwen.service.backend.tornado;

import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.math.TornadoMath;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.arrays.LongArray;

/**
 * Matrix times a batch of rows with fp16 weights (packed four to a long, {@link Fp16}) and f32
 * accumulation, with the RMSNorm that precedes the matrix in the model fused in; the references
 * are {@code ScalarKernels.rmsnorm}, {@code matmul}, {@code addBias}, {@code add} and
 * {@code siluMul}. Columns must be a multiple of {@link Fp16#PER_LONG} (checked where the graphs
 * are built), so a row packs without padding and x rows line up with the quarters.
 *
 * <p>The norm folds into the product: W (g * x * s) = s * (W (g * x)) with s = 1 / rms(x), and
 * sum(x^2) is gathered in the same pass that reads x, so a norm costs no task and no pass of its
 * own. Each kernel has three ways through, picked per step by the row count (the same for every
 * thread, so the branch never diverges):
 * <ul>
 *   <li><b>one row</b> (batch-1 decode): one work-group per output feature; each thread loads four
 *       longs (16 weights) of the row at once before it uses any, so a 2,048-column row is read in
 *       one round trip, and the sums meet in local memory.
 *   <li><b>rows</b> (small batches): one work-group per output feature; each long of the weight
 *       row is decoded once and used for {@link #TILE} token rows.
 *   <li><b>tiled</b> (prefill, large batches, from {@code meta[TILED_FROM]} rows): a work-group
 *       computes a {@link #TF} x {@link #TT} block of features x tokens; each {@link #KC}-column
 *       slice of weights (decoded once) and of activations is staged in local memory and every
 *       thread accumulates 2 x 2 outputs from it, so a weight is read from memory once per 16
 *       tokens. Blocks this small keep enough work-groups in flight at 32-64 rows to fill the
 *       device.
 * </ul>
 * On a PTX device, a tiled step with enough blocks is left to {@link TensorCoreKernels}' task,
 * which runs beside this one ({@link #way} says {@link #TENSOR_CORES}, and this kernel does
 * nothing). The grid is sized for the rows ways ({@code rows} groups); the tiled way needs fewer
 * and the rest exit at once. All assume {@link LayerGraphs#LOCAL} = 128 threads per group.
 *
 * <p>Each way is written out inside its kernel, and {@link #gated}'s repeat {@link #linear}'s
 * shape: a local array handed to a helper method is addressed as a heap array after inlining
 * (a byte offset past an object header, which TornadoVM 5.2 emits as an element index), so only
 * code that touches no local memory lives in helpers. The kernel tests catch it.
 */
final class LinearKernels {

    /** Token rows that share one pass over a weight row in the rows way. */
    static final int TILE = 4;
    /** Features per tiled block. */
    static final int TF = 32;
    /** Tokens per tiled block. */
    static final int TT = 16;
    /** Longs of a weight row per staged slice. */
    static final int KL = 8;
    /** Columns per staged slice: {@link #KL} longs, eight consecutive columns of each quarter. */
    static final int KC = KL * Fp16.PER_LONG;
    /** Local strides of the staged slices, padded by one so a column write hits distinct banks. */
    private static final int WS = TF + 1;
    private static final int XS = TT + 1;

    private LinearKernels() {
    }

    /*
     * Integer tricks below avoid what TornadoVM 5.2's code generation gets wrong. OpenCL:
     * Math.min/max on ints (ambiguous for PoCL), >>> (emitted as a signed shift), -(x >> 31)
     * (negation dropped) and values merged after if/else; also a running sum kept in a
     * local-memory element and read back each iteration, which came out counting one slice only.
     * PTX: >> on an int is emitted as shr.b32, a logical shift, so (x >> 31) of a negative x is 1,
     * not -1; only its lowest bit (neg) means the same on both backends. The kernel tests catch
     * each (the PTX one on a GPU: bench/gpu/run.sh runs them there first).
     */

    /** 1 when x is negative, else 0: the sign bit, masked, as both backends shift it. */
    static int neg(int x) {
        return (x >> 31) & 1;
    }

    /** min(t, count - 1) without a branch. */
    static int clamp(int t, int count) {
        return t - neg(count - 1 - t) * (t - count + 1);
    }

    /** 1 when row t is below count, else 0, without a branch. */
    static int live(int t, int count) {
        return 1 - neg(count - 1 - t);
    }

    /** The ways through a kernel (see the class comment), as {@link #way} numbers them. */
    static final int ONE_ROW = 0;
    static final int ROWS = 1;
    static final int TILED = 2;
    /** The tiled way's work done by {@link TensorCoreKernels}' task instead (PTX devices). */
    static final int TENSOR_CORES = 3;

    /**
     * The way a step of {@code count} rows through a matrix of {@code rows} outputs takes, computed
     * without a branch: tiled from {@code meta[TILED_FROM]} rows, and then on the tensor cores when
     * {@code meta[TENSOR_CORES]} is not 0 and the step has at least that many of their blocks. The
     * kernels compare one int against constants: TornadoVM 5.2 compiled
     * {@code if (a && b) .. else if (a)} into code that, inlined into another kernel, ran both
     * branches.
     */
    static int way(int count, int rows, IntArray meta) {
        int one = neg(count - 2) * (1 - neg(count - 1));     // count == 1 (0 rows take the rows way: no work)
        int tiled = 1 - neg(count - meta.get(StepMeta.TILED_FROM));
        int least = meta.get(StepMeta.TENSOR_CORES);
        int blocks = ((rows + TensorCoreKernels.MF - 1) / TensorCoreKernels.MF)
                * ((count + TensorCoreKernels.MT - 1) / TensorCoreKernels.MT);
        int tensor = tiled * (1 - neg(least - 1)) * (1 - neg(blocks - least));
        return one * ONE_ROW + (1 - one) * (ROWS + tiled + tensor);
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


    /** a0 x[at] + a1 x[at + q] + a2 x[at + 2q] + a3 x[at + 3q]: one long's four weights against a row. */
    static float dot4(float a0, float a1, float a2, float a3, FloatArray x, int at, int q) {
        return a0 * x.get(at) + a1 * x.get(at + q) + a2 * x.get(at + 2 * q) + a3 * x.get(at + 3 * q);
    }

    /** The sum of squares of the four x values a long's weights meet. */
    static float sq4(FloatArray x, int at, int q) {
        float a = x.get(at);
        float b = x.get(at + q);
        float c = x.get(at + 2 * q);
        float d = x.get(at + 3 * q);
        return a * a + b * b + c * c + d * d;
    }

    /** Long m's four weights, each times its column's gain, against row 0 of x. */
    static float dotLong(long v, FloatArray dec, FloatArray g, int normed, FloatArray x, int m, int q) {
        int lo = (int) v;
        int hi = (int) (v >> 32);
        return dot4(Fp16.decode(lo, dec) * gain(g, m, normed), Fp16.decode(lo >> 16, dec) * gain(g, m + q, normed),
                Fp16.decode(hi, dec) * gain(g, m + 2 * q, normed), Fp16.decode(hi >> 16, dec) * gain(g, m + 3 * q, normed),
                x, m, q);
    }

    /**
     * y[t, r] = (accumulate ? y[t, r] : 0) + (hasBias ? bias[r] : 0) + W[r, :] . n(x[t, :]) for
     * rows t &lt; meta[countSlot], where n is RMSNorm with gain g and eps when normed, else the
     * identity. W is [rows, cols] packed ({@link Fp16}), x [T, cols], y [T, rows]; dec is
     * {@link Fp16#table}.
     */
    static void linear(KernelContext ctx, LongArray w, FloatArray x, FloatArray y, FloatArray bias, FloatArray g,
                       FloatArray dec, IntArray meta, int countSlot, int cols, int rows, int hasBias, int accumulate,
                       int normed, float eps, int ls) {
        int lid = ctx.localIdx;
        float[] ws = ctx.allocateFloatLocalArray(KC * WS);
        float[] xs = ctx.allocateFloatLocalArray(KC * XS);
        float[] sq = ctx.allocateFloatLocalArray(TT);
        int count = meta.get(countSlot);
        int q = cols / Fp16.PER_LONG;
        int way = way(count, rows, meta);
        if (way == ONE_ROW) {
            int r = ctx.groupIdx;
            int base = clamp(r, rows) * q;     // groups past the matrix read its last row and write nothing
            float s = 0f;
            float ss = 0f;
            for (int m = lid; m < q; m += 4 * ls) {
                // four 8-byte loads issued before any is used: 32 bytes in flight a thread
                int m1 = clamp(m + ls, q);
                int m2 = clamp(m + 2 * ls, q);
                int m3 = clamp(m + 3 * ls, q);
                long v0 = w.get(base + m);
                long v1 = w.get(base + m1);
                long v2 = w.get(base + m2);
                long v3 = w.get(base + m3);
                int l1 = live(m + ls, q);
                int l2 = live(m + 2 * ls, q);
                int l3 = live(m + 3 * ls, q);
                s += dotLong(v0, dec, g, normed, x, m, q) + l1 * dotLong(v1, dec, g, normed, x, m1, q)
                        + l2 * dotLong(v2, dec, g, normed, x, m2, q) + l3 * dotLong(v3, dec, g, normed, x, m3, q);
                ss += sq4(x, m, q) + l1 * sq4(x, m1, q) + l2 * sq4(x, m2, q) + l3 * sq4(x, m3, q);
            }
            ws[lid] = s;
            ws[ls + lid] = ss;
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
        } else if (way == ROWS) {
            int r = ctx.groupIdx;
            int base = clamp(r, rows) * q;
            for (int tb = 0; tb < count; tb += TILE) {
                int x0 = tb * cols;
                int x1 = clamp(tb + 1, count) * cols;
                int x2 = clamp(tb + 2, count) * cols;
                int x3 = clamp(tb + 3, count) * cols;
                float s0 = 0f;
                float s1 = 0f;
                float s2 = 0f;
                float s3 = 0f;
                float q0 = 0f;
                float q1 = 0f;
                float q2 = 0f;
                float q3 = 0f;
                for (int m = lid; m < q; m += ls) {
                    long v = w.get(base + m);
                    int lo = (int) v;
                    int hi = (int) (v >> 32);
                    float a0 = Fp16.decode(lo, dec) * gain(g, m, normed);
                    float a1 = Fp16.decode(lo >> 16, dec) * gain(g, m + q, normed);
                    float a2 = Fp16.decode(hi, dec) * gain(g, m + 2 * q, normed);
                    float a3 = Fp16.decode(hi >> 16, dec) * gain(g, m + 3 * q, normed);
                    s0 += dot4(a0, a1, a2, a3, x, x0 + m, q);
                    s1 += dot4(a0, a1, a2, a3, x, x1 + m, q);
                    s2 += dot4(a0, a1, a2, a3, x, x2 + m, q);
                    s3 += dot4(a0, a1, a2, a3, x, x3 + m, q);
                    q0 += sq4(x, x0 + m, q);
                    q1 += sq4(x, x1 + m, q);
                    q2 += sq4(x, x2 + m, q);
                    q3 += sq4(x, x3 + m, q);
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
        } else if (way == TILED) {
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
                // Staging slots of this thread: weight long mm of features fa and fa + 16; x column
                // kk of tokens tq, tq + 4, tq + 8 and tq + 12 (column kk = xk + 8 * quarter).
                int mm = lid & 7;
                int fa = lid >> 3;
                int kk0 = lid & 31;
                int xk = kk0 & 7;
                int tq = lid >> 5;
                int rowA = clamp(f0 + fa, rows) * q;
                int rowB = clamp(f0 + fa + 16, rows) * q;
                int xq = (kk0 >> 3) * q;
                int xr0 = clamp(t0 + tq, count) * cols + xq;
                int xr1 = clamp(t0 + tq + 4, count) * cols + xq;
                int xr2 = clamp(t0 + tq + 8, count) * cols + xq;
                int xr3 = clamp(t0 + tq + 12, count) * cols + xq;
                // The first slice's loads; each pass then issues the next slice's before it computes.
                long va = w.get(rowA + clamp(mm, q));
                long vb = w.get(rowB + clamp(mm, q));
                float p0 = x.get(xr0 + clamp(xk, q));
                float p1 = x.get(xr1 + clamp(xk, q));
                float p2 = x.get(xr2 + clamp(xk, q));
                float p3 = x.get(xr3 + clamp(xk, q));
                for (int m0 = 0; m0 < q; m0 += KL) {
                    int m = clamp(m0 + mm, q);
                    int ok = live(m0 + mm, q);
                    int lo = (int) va;
                    int hi = (int) (va >> 32);
                    ws[mm * WS + fa] = Fp16.decode(lo, dec) * gain(g, m, normed) * ok;
                    ws[(mm + 8) * WS + fa] = Fp16.decode(lo >> 16, dec) * gain(g, m + q, normed) * ok;
                    ws[(mm + 16) * WS + fa] = Fp16.decode(hi, dec) * gain(g, m + 2 * q, normed) * ok;
                    ws[(mm + 24) * WS + fa] = Fp16.decode(hi >> 16, dec) * gain(g, m + 3 * q, normed) * ok;
                    lo = (int) vb;
                    hi = (int) (vb >> 32);
                    ws[mm * WS + fa + 16] = Fp16.decode(lo, dec) * gain(g, m, normed) * ok;
                    ws[(mm + 8) * WS + fa + 16] = Fp16.decode(lo >> 16, dec) * gain(g, m + q, normed) * ok;
                    ws[(mm + 16) * WS + fa + 16] = Fp16.decode(hi, dec) * gain(g, m + 2 * q, normed) * ok;
                    ws[(mm + 24) * WS + fa + 16] = Fp16.decode(hi >> 16, dec) * gain(g, m + 3 * q, normed) * ok;
                    int okx = live(m0 + xk, q);
                    xs[kk0 * XS + tq] = p0 * okx;
                    xs[kk0 * XS + tq + 4] = p1 * okx;
                    xs[kk0 * XS + tq + 8] = p2 * okx;
                    xs[kk0 * XS + tq + 12] = p3 * okx;
                    ctx.localBarrier();
                    int mn = clamp(m0 + KL + mm, q);
                    int mx = clamp(m0 + KL + xk, q);
                    va = w.get(rowA + mn);
                    vb = w.get(rowB + mn);
                    p0 = x.get(xr0 + mx);
                    p1 = x.get(xr1 + mx);
                    p2 = x.get(xr2 + mx);
                    p3 = x.get(xr3 + mx);
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
     * SiLU on the w2 branch, n the RMSNorm with gain g (ln_2). The one-row way loads two longs of
     * each matrix at once; the rows way decodes both weight longs once per two token rows; the
     * tiled way stages both slices.
     */
    static void gated(KernelContext ctx, LongArray w1, LongArray w2, FloatArray x, FloatArray h, FloatArray g,
                      FloatArray dec, IntArray meta, int cols, int rows, float eps, int ls) {
        int lid = ctx.localIdx;
        float[] us = ctx.allocateFloatLocalArray(KC * WS);
        float[] vs = ctx.allocateFloatLocalArray(KC * WS);
        float[] xs = ctx.allocateFloatLocalArray(KC * XS);
        float[] sq = ctx.allocateFloatLocalArray(TT);
        int count = meta.get(StepMeta.ROWS);
        int q = cols / Fp16.PER_LONG;
        int way = way(count, rows, meta);
        if (way == ONE_ROW) {
            int r = ctx.groupIdx;
            int base = clamp(r, rows) * q;
            float a = 0f;
            float b = 0f;
            float ss = 0f;
            for (int m = lid; m < q; m += 2 * ls) {
                int m1 = clamp(m + ls, q);
                long u0 = w1.get(base + m);
                long u1 = w1.get(base + m1);
                long v0 = w2.get(base + m);
                long v1 = w2.get(base + m1);
                int l1 = live(m + ls, q);
                a += dotLong(u0, dec, g, 1, x, m, q) + l1 * dotLong(u1, dec, g, 1, x, m1, q);
                b += dotLong(v0, dec, g, 1, x, m, q) + l1 * dotLong(v1, dec, g, 1, x, m1, q);
                ss += sq4(x, m, q) + l1 * sq4(x, m1, q);
            }
            us[lid] = a;
            us[ls + lid] = b;
            us[2 * ls + lid] = ss;
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
        } else if (way == ROWS) {
            int r = ctx.groupIdx;
            int base = clamp(r, rows) * q;
            for (int tb = 0; tb < count; tb += 2) {
                int x0 = tb * cols;
                int x1 = clamp(tb + 1, count) * cols;
                float a0 = 0f;
                float g0 = 0f;
                float a1 = 0f;
                float g1 = 0f;
                float q0 = 0f;
                float q1 = 0f;
                for (int m = lid; m < q; m += ls) {
                    long u = w1.get(base + m);
                    long v = w2.get(base + m);
                    float k0 = g.get(m);
                    float k1 = g.get(m + q);
                    float k2 = g.get(m + 2 * q);
                    float k3 = g.get(m + 3 * q);
                    int lo = (int) u;
                    int hi = (int) (u >> 32);
                    float u0 = Fp16.decode(lo, dec) * k0;
                    float u1 = Fp16.decode(lo >> 16, dec) * k1;
                    float u2 = Fp16.decode(hi, dec) * k2;
                    float u3 = Fp16.decode(hi >> 16, dec) * k3;
                    lo = (int) v;
                    hi = (int) (v >> 32);
                    float v0 = Fp16.decode(lo, dec) * k0;
                    float v1 = Fp16.decode(lo >> 16, dec) * k1;
                    float v2 = Fp16.decode(hi, dec) * k2;
                    float v3 = Fp16.decode(hi >> 16, dec) * k3;
                    a0 += dot4(u0, u1, u2, u3, x, x0 + m, q);
                    g0 += dot4(v0, v1, v2, v3, x, x0 + m, q);
                    a1 += dot4(u0, u1, u2, u3, x, x1 + m, q);
                    g1 += dot4(v0, v1, v2, v3, x, x1 + m, q);
                    q0 += sq4(x, x0 + m, q);
                    q1 += sq4(x, x1 + m, q);
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
        } else if (way == TILED) {
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
                int mm = lid & 7;
                int fa = lid >> 3;
                int kk0 = lid & 31;
                int xk = kk0 & 7;
                int tq = lid >> 5;
                int rowA = clamp(f0 + fa, rows) * q;
                int rowB = clamp(f0 + fa + 16, rows) * q;
                int xq = (kk0 >> 3) * q;
                int xr0 = clamp(t0 + tq, count) * cols + xq;
                int xr1 = clamp(t0 + tq + 4, count) * cols + xq;
                int xr2 = clamp(t0 + tq + 8, count) * cols + xq;
                int xr3 = clamp(t0 + tq + 12, count) * cols + xq;
                long ua = w1.get(rowA + clamp(mm, q));
                long ub = w1.get(rowB + clamp(mm, q));
                long va = w2.get(rowA + clamp(mm, q));
                long vb = w2.get(rowB + clamp(mm, q));
                float p0 = x.get(xr0 + clamp(xk, q));
                float p1 = x.get(xr1 + clamp(xk, q));
                float p2 = x.get(xr2 + clamp(xk, q));
                float p3 = x.get(xr3 + clamp(xk, q));
                for (int m0 = 0; m0 < q; m0 += KL) {
                    int m = clamp(m0 + mm, q);
                    int ok = live(m0 + mm, q);
                    float k0 = g.get(m) * ok;
                    float k1 = g.get(m + q) * ok;
                    float k2 = g.get(m + 2 * q) * ok;
                    float k3 = g.get(m + 3 * q) * ok;
                    int lo = (int) ua;
                    int hi = (int) (ua >> 32);
                    us[mm * WS + fa] = Fp16.decode(lo, dec) * k0;
                    us[(mm + 8) * WS + fa] = Fp16.decode(lo >> 16, dec) * k1;
                    us[(mm + 16) * WS + fa] = Fp16.decode(hi, dec) * k2;
                    us[(mm + 24) * WS + fa] = Fp16.decode(hi >> 16, dec) * k3;
                    lo = (int) ub;
                    hi = (int) (ub >> 32);
                    us[mm * WS + fa + 16] = Fp16.decode(lo, dec) * k0;
                    us[(mm + 8) * WS + fa + 16] = Fp16.decode(lo >> 16, dec) * k1;
                    us[(mm + 16) * WS + fa + 16] = Fp16.decode(hi, dec) * k2;
                    us[(mm + 24) * WS + fa + 16] = Fp16.decode(hi >> 16, dec) * k3;
                    lo = (int) va;
                    hi = (int) (va >> 32);
                    vs[mm * WS + fa] = Fp16.decode(lo, dec) * k0;
                    vs[(mm + 8) * WS + fa] = Fp16.decode(lo >> 16, dec) * k1;
                    vs[(mm + 16) * WS + fa] = Fp16.decode(hi, dec) * k2;
                    vs[(mm + 24) * WS + fa] = Fp16.decode(hi >> 16, dec) * k3;
                    lo = (int) vb;
                    hi = (int) (vb >> 32);
                    vs[mm * WS + fa + 16] = Fp16.decode(lo, dec) * k0;
                    vs[(mm + 8) * WS + fa + 16] = Fp16.decode(lo >> 16, dec) * k1;
                    vs[(mm + 16) * WS + fa + 16] = Fp16.decode(hi, dec) * k2;
                    vs[(mm + 24) * WS + fa + 16] = Fp16.decode(hi >> 16, dec) * k3;
                    int okx = live(m0 + xk, q);
                    xs[kk0 * XS + tq] = p0 * okx;
                    xs[kk0 * XS + tq + 4] = p1 * okx;
                    xs[kk0 * XS + tq + 8] = p2 * okx;
                    xs[kk0 * XS + tq + 12] = p3 * okx;
                    ctx.localBarrier();
                    int mn = clamp(m0 + KL + mm, q);
                    int mx = clamp(m0 + KL + xk, q);
                    ua = w1.get(rowA + mn);
                    ub = w1.get(rowB + mn);
                    va = w2.get(rowA + mn);
                    vb = w2.get(rowB + mn);
                    p0 = x.get(xr0 + mx);
                    p1 = x.get(xr1 + mx);
                    p2 = x.get(xr2 + mx);
                    p3 = x.get(xr3 + mx);
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
