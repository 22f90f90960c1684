package qwen.service.backend.tornado;

import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.enums.MMAShape;
import uk.ac.manchester.tornado.api.types.HalfFloat;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.arrays.LongArray;

/**
 * The tiled way of {@link LinearKernels#linear} and {@link LinearKernels#gated} (prefill and large
 * batches) on the tensor cores, for PTX devices: TornadoVM's MMA intrinsics exist for PTX only,
 * and its OpenCL front end stops at them. Each is a task of its own beside the portable kernel's
 * task, with the same arguments: a step does its work in one of the two, as
 * {@link LinearKernels#way} says ({@code meta[TENSOR_CORES]} and enough blocks), and the other
 * returns at once. One kernel holding both ran the batch-1 way 10-40% slower on an H100 (its
 * registers are counted for the tensor-core way, so fewer groups fit); the second task costs a
 * batch-1 step about 3.5 us a launch there.
 *
 * <p><b>The product.</b> A work-group of 4 warps computes {@link #MF} features x {@link #MT} tokens
 * with mma.sync m16n8k16 (fp16 operands, f32 accumulators): warp w owns features 16w..16w+15 (one
 * A fragment) and four 8-token B fragments. Each step of {@link #MK} columns copies four longs of
 * each of the 64 weight rows into local memory as they are, with no decode: a long's four halves
 * are columns m, m + q, m + 2q and m + 3q, so position p = 4j + part of a staged row is column
 * m0 + j + part * q, and the activations are staged in the same order.
 *
 * <p><b>Activations stay f32 in effect.</b> Each activation (times the norm's gain, times
 * {@link #SCALE}) is split into two fp16 parts, hi = fp16(a) and lo = fp16(a - hi), and both go
 * through the tensor cores into the same f32 accumulators: a is kept to about 22 bits where fp16
 * alone keeps 11, so the outputs match the f32 ways within f32 accumulation error (the kernel tests
 * hold both to the same bound) for twice the tensor-core work, which has room to spare. SCALE moves
 * fp16's range to cover activations up to 10^6 (fp16 alone ends at 65,504); the outputs are
 * scaled back. The split goes through the group's staging area of {@code scratch}: TornadoVM's PTX
 * back end rounds to fp16 only a value it has just loaded (a computed one it moves into a 16-bit
 * register unconverted, which the PTX assembler rejects), so each value is stored, and after a
 * barrier a neighbouring thread loads and rounds it (another thread's slot, so the compiler cannot
 * hand the stored value back unloaded).
 *
 * <p><b>The epilogue.</b> The accumulators are stored to this group's slot of {@code scratch} (the
 * MMA store writes global memory only) and read back, after a barrier, one output per thread in
 * the order that keeps the writes of y coalesced, to apply the norm's 1 / rms, the bias, the
 * residual or SiLU, exactly as the portable kernels' {@code put}. At most {@link #GROUPS} groups
 * take part, each looping over blocks, so scratch stays {@link #scratchFloats} floats whatever the
 * step.
 *
 * <p>{@link #gated} repeats {@link #linear}'s staging for the reason {@link LinearKernels} gives:
 * code that writes local arrays cannot move into a shared helper under TornadoVM 5.2.
 */
final class TensorCoreKernels {

    /** Features per block: four warps of one 16-row A fragment. */
    static final int MF = 64;
    /** Tokens per block: four 8-token B fragments. */
    static final int MT = 32;
    /** Columns per step: the k of m16n8k16, four longs of each row. */
    static final int MK = 16;
    /** Longs of a row per step. */
    private static final int ML = MK / Fp16.PER_LONG;
    /**
     * Most work-groups of a tensor-core task; each loops over blocks. The task is launched every
     * step, and in a step it leaves to the portable kernel its groups only start and return: on an
     * H100, up to 2,048 groups made a batch-1 step's graphs about 0.65 ms longer, 512 (still about
     * four groups a multiprocessor) about 0.42 ms.
     */
    static final int GROUPS = 512;
    /** Floats of a group's accumulator slot in scratch: two [MF, MT] tiles. */
    private static final int SLOT = 2 * MF * MT;
    /** Floats of a group's staging area in scratch: four activations and four remainders a thread. */
    private static final int STAGE = 8 * 128;
    /** Activations times this before the split into fp16 parts; outputs times its inverse. */
    static final float SCALE = 1f / 16;

    private TensorCoreKernels() {
    }

    /** Whether a matrix of {@code cols} columns fits the tensor-core way: whole steps of {@link #MK}. */
    static boolean fits(int cols) {
        return cols % MK == 0;
    }

    /** Floats of the scratch buffer: an accumulator slot and a staging area per group. */
    static int scratchFloats() {
        return GROUPS * (SLOT + STAGE);
    }

    /** Groups of the task's grid for a matrix of {@code rows} outputs and steps of up to {@code maxRows} rows. */
    static int groups(int rows, int maxRows) {
        return Math.min(GROUPS, ((rows + MF - 1) / MF) * ((maxRows + MT - 1) / MT));
    }

    /**
     * {@link LinearKernels#linear}'s steps that {@link LinearKernels#way} gives the tensor cores
     * (same arguments, same result); {@code scratch} holds {@link #scratchFloats} and the task's
     * grid has {@code groups} groups, at most {@link #GROUPS}.
     */
    static void linear(KernelContext ctx, LongArray w, FloatArray x, FloatArray y, FloatArray bias, FloatArray g,
                       FloatArray dec, IntArray meta, int countSlot, int cols, int rows, int hasBias, int accumulate,
                       int normed, float eps, FloatArray scratch, int groups) {
        int count = meta.get(countSlot);
        if (LinearKernels.way(count, rows, meta) == LinearKernels.TENSOR_CORES) {
            int lid = ctx.localIdx;
            int warp = lid >> 5;
            int[] aTile = ctx.allocateIntLocalArray(MF * MK / 2);
            int[] bHi = ctx.allocateIntLocalArray(MK * MT / 2);
            int[] bLo = ctx.allocateIntLocalArray(MK * MT / 2);
            float[] red = ctx.allocateFloatLocalArray(MT * MK);
            float[] sq = ctx.allocateFloatLocalArray(MT);
            int q = cols / Fp16.PER_LONG;
            int tilesF = (rows + MF - 1) / MF;
            int tiles = tilesF * ((count + MT - 1) / MT);
            // Staging slots of this thread. Weights: longs ja, ja + 1 of the step for row fa.
            // Activations: position kp of the step for tokens tk, tk + 1 (B ints lid) and tk + 16,
            // tk + 17 (B ints lid + 128), where B int e holds tokens 8 (e >> 6) + 2 (e & 3) + {0, 1}
            // at position (e >> 2) & 15.
            int fa = lid >> 1;
            int ja = (lid & 1) * 2;
            int kp = (lid >> 2) & 15;
            int tk = (lid >> 6) * 8 + 2 * (lid & 3);
            int colOff = (kp >> 2) + (kp & 3) * q;
            int slot = ctx.groupIdx * 2 * MF;
            int stage = GROUPS * SLOT + ctx.groupIdx * STAGE;
            for (int blk = ctx.groupIdx; blk < tiles; blk += groups) {
                int f0 = (blk % tilesF) * MF;
                int t0 = (blk / tilesF) * MT;
                int rowA = LinearKernels.clamp(f0 + fa, rows) * q + ja;
                int x0 = LinearKernels.clamp(t0 + tk, count) * cols + colOff;
                int x1 = LinearKernels.clamp(t0 + tk + 1, count) * cols + colOff;
                int x2 = LinearKernels.clamp(t0 + tk + 16, count) * cols + colOff;
                int x3 = LinearKernels.clamp(t0 + tk + 17, count) * cols + colOff;
                float[] c0 = ctx.mmaFragment(0f);
                float[] c1 = ctx.mmaFragment(0f);
                float[] c2 = ctx.mmaFragment(0f);
                float[] c3 = ctx.mmaFragment(0f);
                float s0 = 0f;
                float s1 = 0f;
                float s2 = 0f;
                float s3 = 0f;
                // The first step's loads; each pass then issues the next step's before its products.
                long v0 = w.get(rowA);
                long v1 = w.get(rowA + 1);
                float p0 = x.get(x0);
                float p1 = x.get(x1);
                float p2 = x.get(x2);
                float p3 = x.get(x3);
                for (int m0 = 0; m0 < q; m0 += ML) {
                    aTile[fa * 8 + 2 * ja] = (int) v0;
                    aTile[fa * 8 + 2 * ja + 1] = (int) (v0 >> 32);
                    aTile[fa * 8 + 2 * ja + 2] = (int) v1;
                    aTile[fa * 8 + 2 * ja + 3] = (int) (v1 >> 32);
                    float k = LinearKernels.gain(g, m0 + colOff, normed) * SCALE;
                    s0 += p0 * p0;
                    s1 += p1 * p1;
                    s2 += p2 * p2;
                    s3 += p3 * p3;
                    // The fp16 split through scratch (see the class comment): this thread's four
                    // activations out, its neighbour's back in to be rounded, their remainders out,
                    // its own remainders back in.
                    scratch.set(stage + lid, p0 * k);
                    scratch.set(stage + 128 + lid, p1 * k);
                    scratch.set(stage + 256 + lid, p2 * k);
                    scratch.set(stage + 384 + lid, p3 * k);
                    ctx.localBarrier();
                    int nb = lid ^ 1;
                    float e0 = scratch.get(stage + nb);
                    float e1 = scratch.get(stage + 128 + nb);
                    float e2 = scratch.get(stage + 256 + nb);
                    float e3 = scratch.get(stage + 384 + nb);
                    int h0 = toHalf(scratch.get(stage + nb));
                    int h1 = toHalf(scratch.get(stage + 128 + nb));
                    int h2 = toHalf(scratch.get(stage + 256 + nb));
                    int h3 = toHalf(scratch.get(stage + 384 + nb));
                    bHi[nb] = h0 | (h1 << 16);
                    bHi[nb + 128] = h2 | (h3 << 16);
                    scratch.set(stage + 512 + nb, e0 - Fp16.decode(h0, dec));
                    scratch.set(stage + 640 + nb, e1 - Fp16.decode(h1, dec));
                    scratch.set(stage + 768 + nb, e2 - Fp16.decode(h2, dec));
                    scratch.set(stage + 896 + nb, e3 - Fp16.decode(h3, dec));
                    ctx.localBarrier();
                    bLo[lid] = toHalf(scratch.get(stage + 512 + lid)) | (toHalf(scratch.get(stage + 640 + lid)) << 16);
                    bLo[lid + 128] = toHalf(scratch.get(stage + 768 + lid)) | (toHalf(scratch.get(stage + 896 + lid)) << 16);
                    ctx.localBarrier();
                    int mn = LinearKernels.clamp(m0 + ML, q - ML + 1);
                    v0 = w.get(rowA + mn);
                    v1 = w.get(rowA + mn + 1);
                    p0 = x.get(x0 + mn);
                    p1 = x.get(x1 + mn);
                    p2 = x.get(x2 + mn);
                    p3 = x.get(x3 + mn);
                    HalfFloat[] a = ctx.mmaLoadA(aTile, MK, warp * 512);
                    c0 = ctx.mma(a, ctx.mmaLoadB(bHi, MK, 0), c0, MMAShape.M16N8K16);
                    c0 = ctx.mma(a, ctx.mmaLoadB(bLo, MK, 0), c0, MMAShape.M16N8K16);
                    c1 = ctx.mma(a, ctx.mmaLoadB(bHi, MK, 256), c1, MMAShape.M16N8K16);
                    c1 = ctx.mma(a, ctx.mmaLoadB(bLo, MK, 256), c1, MMAShape.M16N8K16);
                    c2 = ctx.mma(a, ctx.mmaLoadB(bHi, MK, 512), c2, MMAShape.M16N8K16);
                    c2 = ctx.mma(a, ctx.mmaLoadB(bLo, MK, 512), c2, MMAShape.M16N8K16);
                    c3 = ctx.mma(a, ctx.mmaLoadB(bHi, MK, 768), c3, MMAShape.M16N8K16);
                    c3 = ctx.mma(a, ctx.mmaLoadB(bLo, MK, 768), c3, MMAShape.M16N8K16);
                    ctx.localBarrier();
                }
                int f = slot + warp * 16;
                ctx.mmaStore(c0, scratch, f, 0, MT);
                ctx.mmaStore(c1, scratch, f, 8, MT);
                ctx.mmaStore(c2, scratch, f, 16, MT);
                ctx.mmaStore(c3, scratch, f, 24, MT);
                red[tk * MK + kp] = s0;
                red[(tk + 1) * MK + kp] = s1;
                red[(tk + 16) * MK + kp] = s2;
                red[(tk + 17) * MK + kp] = s3;
                ctx.localBarrier();
                if (lid < MT) {
                    float t = 0f;
                    for (int i = 0; i < MK; i++) {
                        t += red[lid * MK + i];
                    }
                    sq[lid] = t;
                }
                ctx.localBarrier();
                int fl = lid & (MF - 1);
                for (int tl = lid >> 6; tl < MT; tl += 2) {
                    float v = scratch.get((slot + fl) * MT + tl) * (1f / SCALE) * LinearKernels.rms(sq[tl], cols, eps, normed);
                    LinearKernels.put(y, bias, t0 + tl, f0 + fl, rows, count, v, hasBias, accumulate);
                }
                ctx.localBarrier();     // the next block reuses the slot, red and sq
            }
        }
    }

    /**
     * {@link LinearKernels#gated}'s steps that {@link LinearKernels#way} gives the tensor cores
     * (same arguments, same result): both matrices' tiles staged each step against the same
     * activations; scratch and groups as for {@link #linear}.
     */
    static void gated(KernelContext ctx, LongArray w1, LongArray w2, FloatArray x, FloatArray h, FloatArray g,
                      FloatArray dec, IntArray meta, int cols, int rows, float eps, FloatArray scratch, int groups) {
        int count = meta.get(StepMeta.ROWS);
        if (LinearKernels.way(count, rows, meta) == LinearKernels.TENSOR_CORES) {
            int lid = ctx.localIdx;
            int warp = lid >> 5;
            int[] uTile = ctx.allocateIntLocalArray(MF * MK / 2);
            int[] vTile = ctx.allocateIntLocalArray(MF * MK / 2);
            int[] bHi = ctx.allocateIntLocalArray(MK * MT / 2);
            int[] bLo = ctx.allocateIntLocalArray(MK * MT / 2);
            float[] red = ctx.allocateFloatLocalArray(MT * MK);
            float[] sq = ctx.allocateFloatLocalArray(MT);
            int q = cols / Fp16.PER_LONG;
            int tilesF = (rows + MF - 1) / MF;
            int tiles = tilesF * ((count + MT - 1) / MT);
            int fa = lid >> 1;
            int ja = (lid & 1) * 2;
            int kp = (lid >> 2) & 15;
            int tk = (lid >> 6) * 8 + 2 * (lid & 3);
            int colOff = (kp >> 2) + (kp & 3) * q;
            int slot = ctx.groupIdx * 2 * MF;
            int stage = GROUPS * SLOT + ctx.groupIdx * STAGE;
            for (int blk = ctx.groupIdx; blk < tiles; blk += groups) {
                int f0 = (blk % tilesF) * MF;
                int t0 = (blk / tilesF) * MT;
                int rowA = LinearKernels.clamp(f0 + fa, rows) * q + ja;
                int x0 = LinearKernels.clamp(t0 + tk, count) * cols + colOff;
                int x1 = LinearKernels.clamp(t0 + tk + 1, count) * cols + colOff;
                int x2 = LinearKernels.clamp(t0 + tk + 16, count) * cols + colOff;
                int x3 = LinearKernels.clamp(t0 + tk + 17, count) * cols + colOff;
                float[] u0 = ctx.mmaFragment(0f);
                float[] u1 = ctx.mmaFragment(0f);
                float[] u2 = ctx.mmaFragment(0f);
                float[] u3 = ctx.mmaFragment(0f);
                float[] g0 = ctx.mmaFragment(0f);
                float[] g1 = ctx.mmaFragment(0f);
                float[] g2 = ctx.mmaFragment(0f);
                float[] g3 = ctx.mmaFragment(0f);
                float s0 = 0f;
                float s1 = 0f;
                float s2 = 0f;
                float s3 = 0f;
                long a0 = w1.get(rowA);
                long a1 = w1.get(rowA + 1);
                long b0 = w2.get(rowA);
                long b1 = w2.get(rowA + 1);
                float p0 = x.get(x0);
                float p1 = x.get(x1);
                float p2 = x.get(x2);
                float p3 = x.get(x3);
                for (int m0 = 0; m0 < q; m0 += ML) {
                    uTile[fa * 8 + 2 * ja] = (int) a0;
                    uTile[fa * 8 + 2 * ja + 1] = (int) (a0 >> 32);
                    uTile[fa * 8 + 2 * ja + 2] = (int) a1;
                    uTile[fa * 8 + 2 * ja + 3] = (int) (a1 >> 32);
                    vTile[fa * 8 + 2 * ja] = (int) b0;
                    vTile[fa * 8 + 2 * ja + 1] = (int) (b0 >> 32);
                    vTile[fa * 8 + 2 * ja + 2] = (int) b1;
                    vTile[fa * 8 + 2 * ja + 3] = (int) (b1 >> 32);
                    float k = g.get(m0 + colOff) * SCALE;
                    s0 += p0 * p0;
                    s1 += p1 * p1;
                    s2 += p2 * p2;
                    s3 += p3 * p3;
                    // The fp16 split through scratch (see the class comment): this thread's four
                    // activations out, its neighbour's back in to be rounded, their remainders out,
                    // its own remainders back in.
                    scratch.set(stage + lid, p0 * k);
                    scratch.set(stage + 128 + lid, p1 * k);
                    scratch.set(stage + 256 + lid, p2 * k);
                    scratch.set(stage + 384 + lid, p3 * k);
                    ctx.localBarrier();
                    int nb = lid ^ 1;
                    float e0 = scratch.get(stage + nb);
                    float e1 = scratch.get(stage + 128 + nb);
                    float e2 = scratch.get(stage + 256 + nb);
                    float e3 = scratch.get(stage + 384 + nb);
                    int h0 = toHalf(scratch.get(stage + nb));
                    int h1 = toHalf(scratch.get(stage + 128 + nb));
                    int h2 = toHalf(scratch.get(stage + 256 + nb));
                    int h3 = toHalf(scratch.get(stage + 384 + nb));
                    bHi[nb] = h0 | (h1 << 16);
                    bHi[nb + 128] = h2 | (h3 << 16);
                    scratch.set(stage + 512 + nb, e0 - Fp16.decode(h0, dec));
                    scratch.set(stage + 640 + nb, e1 - Fp16.decode(h1, dec));
                    scratch.set(stage + 768 + nb, e2 - Fp16.decode(h2, dec));
                    scratch.set(stage + 896 + nb, e3 - Fp16.decode(h3, dec));
                    ctx.localBarrier();
                    bLo[lid] = toHalf(scratch.get(stage + 512 + lid)) | (toHalf(scratch.get(stage + 640 + lid)) << 16);
                    bLo[lid + 128] = toHalf(scratch.get(stage + 768 + lid)) | (toHalf(scratch.get(stage + 896 + lid)) << 16);
                    ctx.localBarrier();
                    int mn = LinearKernels.clamp(m0 + ML, q - ML + 1);
                    a0 = w1.get(rowA + mn);
                    a1 = w1.get(rowA + mn + 1);
                    b0 = w2.get(rowA + mn);
                    b1 = w2.get(rowA + mn + 1);
                    p0 = x.get(x0 + mn);
                    p1 = x.get(x1 + mn);
                    p2 = x.get(x2 + mn);
                    p3 = x.get(x3 + mn);
                    HalfFloat[] ua = ctx.mmaLoadA(uTile, MK, warp * 512);
                    HalfFloat[] va = ctx.mmaLoadA(vTile, MK, warp * 512);
                    HalfFloat[] hi = ctx.mmaLoadB(bHi, MK, 0);
                    HalfFloat[] lo = ctx.mmaLoadB(bLo, MK, 0);
                    u0 = ctx.mma(ua, lo, ctx.mma(ua, hi, u0, MMAShape.M16N8K16), MMAShape.M16N8K16);
                    g0 = ctx.mma(va, lo, ctx.mma(va, hi, g0, MMAShape.M16N8K16), MMAShape.M16N8K16);
                    hi = ctx.mmaLoadB(bHi, MK, 256);
                    lo = ctx.mmaLoadB(bLo, MK, 256);
                    u1 = ctx.mma(ua, lo, ctx.mma(ua, hi, u1, MMAShape.M16N8K16), MMAShape.M16N8K16);
                    g1 = ctx.mma(va, lo, ctx.mma(va, hi, g1, MMAShape.M16N8K16), MMAShape.M16N8K16);
                    hi = ctx.mmaLoadB(bHi, MK, 512);
                    lo = ctx.mmaLoadB(bLo, MK, 512);
                    u2 = ctx.mma(ua, lo, ctx.mma(ua, hi, u2, MMAShape.M16N8K16), MMAShape.M16N8K16);
                    g2 = ctx.mma(va, lo, ctx.mma(va, hi, g2, MMAShape.M16N8K16), MMAShape.M16N8K16);
                    hi = ctx.mmaLoadB(bHi, MK, 768);
                    lo = ctx.mmaLoadB(bLo, MK, 768);
                    u3 = ctx.mma(ua, lo, ctx.mma(ua, hi, u3, MMAShape.M16N8K16), MMAShape.M16N8K16);
                    g3 = ctx.mma(va, lo, ctx.mma(va, hi, g3, MMAShape.M16N8K16), MMAShape.M16N8K16);
                    ctx.localBarrier();
                }
                int f = slot + warp * 16;
                ctx.mmaStore(u0, scratch, f, 0, MT);
                ctx.mmaStore(u1, scratch, f, 8, MT);
                ctx.mmaStore(u2, scratch, f, 16, MT);
                ctx.mmaStore(u3, scratch, f, 24, MT);
                ctx.mmaStore(g0, scratch, f + MF, 0, MT);
                ctx.mmaStore(g1, scratch, f + MF, 8, MT);
                ctx.mmaStore(g2, scratch, f + MF, 16, MT);
                ctx.mmaStore(g3, scratch, f + MF, 24, MT);
                red[tk * MK + kp] = s0;
                red[(tk + 1) * MK + kp] = s1;
                red[(tk + 16) * MK + kp] = s2;
                red[(tk + 17) * MK + kp] = s3;
                ctx.localBarrier();
                if (lid < MT) {
                    float t = 0f;
                    for (int i = 0; i < MK; i++) {
                        t += red[lid * MK + i];
                    }
                    sq[lid] = t;
                }
                ctx.localBarrier();
                int fl = lid & (MF - 1);
                for (int tl = lid >> 6; tl < MT; tl += 2) {
                    float s = (1f / SCALE) * LinearKernels.rms(sq[tl], cols, eps, 1);
                    LinearKernels.putGated(h, t0 + tl, f0 + fl, rows, count, scratch.get((slot + fl) * MT + tl) * s,
                            scratch.get((slot + MF + fl) * MT + tl) * s);
                }
                ctx.localBarrier();
            }
        }
    }

    /**
     * The fp16 bits (round to nearest) of v, in the low 16 bits. TornadoVM's PTX back end converts
     * only a value loaded from memory at this point (a computed one is moved into a 16-bit
     * register as it is, which the PTX assembler rejects), so v must come straight from a read.
     */
    static int toHalf(float v) {
        return new HalfFloat(v).getHalfFloatValue() & 0xFFFF;
    }
}
