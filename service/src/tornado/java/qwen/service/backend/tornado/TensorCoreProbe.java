package qwen.service.backend.tornado;

import java.util.Locale;
import java.util.SplittableRandom;
import uk.ac.manchester.tornado.api.GridScheduler;
import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.TornadoExecutionResult;
import uk.ac.manchester.tornado.api.WorkerGrid1D;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;
import uk.ac.manchester.tornado.api.enums.MMAShape;
import uk.ac.manchester.tornado.api.enums.ProfilerMode;
import uk.ac.manchester.tornado.api.types.HalfFloat;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.arrays.LongArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;

/**
 * A measurement program for the GPU backend's next step, not part of it: the tensor cores for
 * prefill and large batches, where the f32 tiled kernels reach about 4 TFLOP/s. On a PTX device
 * (TornadoVM's MMA intrinsics exist for PTX only) it computes c[f, t] = sum_k W[f, k] x[t, k] with
 * W in the linear kernels' packed fp16 layout ({@link Fp16}) as the m16n8k16 A operand, the
 * activations as fp16 B operands and f32 accumulators, checks a small case against a
 * double-precision reference, and times Qwen-1.8B shapes beside {@link LinearKernels#linear}'s
 * tiled way on the same weights. Prints one JSON object per figure; anything that fails to compile
 * or run is printed as an error and the rest goes on.
 *
 * <p>Two ways to the fp16 activations are tried: bits packed on the host, and f32 activations
 * converted in the kernel (TornadoVM's HalfFloat), which is what the backend would need. They are
 * two kernels, alike but for how they stage the activations, so that one TornadoVM cannot compile
 * does not take the other down with it.
 *
 * <p>A work-group of 4 warps computes {@link #FB} features x {@link #TB} tokens: warp w owns
 * features 16w..16w+15 (one A fragment) and all four 8-token B fragments. Each step of
 * {@link #KB} columns stages four longs of each of the 64 weight rows as they are (a long's four
 * halves are columns m, m + q, m + 2q, m + 3q, so position p = 4j + part of a staged row is column
 * m0 + j + part * q) and the matching activations, in the row-major layouts ldmatrix reads (A: 16
 * halves a row; B: 16 k-rows of 8 tokens).
 */
public final class TensorCoreProbe {

    static final int FB = 64;
    static final int TB = 32;
    static final int KB = 16;
    private static final int THREADS = 128;

    private TensorCoreProbe() {
    }

    /** Column of position p (0..15) of the staged step at long m0: see the class comment. */
    static int column(int m0, int p, int q) {
        return m0 + (p >> 2) + (p & 3) * q;
    }

    /** Activations as fp16 bits, [tokens, cols]. */
    static void mmaHalves(KernelContext ctx, LongArray w, ShortArray xh, FloatArray c, int rows, int cols, int tokens) {
        int lid = ctx.localIdx;
        int warp = lid >> 5;
        int tilesF = rows / FB;
        int f0 = (ctx.groupIdx % tilesF) * FB;
        int t0 = (ctx.groupIdx / tilesF) * TB;
        int q = cols / Fp16.PER_LONG;
        int[] aTile = ctx.allocateIntLocalArray(FB * KB / 2);
        int[] bTile = ctx.allocateIntLocalArray(KB * TB / 2);
        float[] c0 = ctx.mmaFragment(0f);
        float[] c1 = ctx.mmaFragment(0f);
        float[] c2 = ctx.mmaFragment(0f);
        float[] c3 = ctx.mmaFragment(0f);
        int fa = lid >> 1;
        int ja = (lid & 1) * 2;
        int rowA = (f0 + fa) * q + ja;
        int e0 = lid;
        int e1 = lid + THREADS;
        int ta = t0 + (e0 >> 6) * 8 + 2 * (e0 & 3);
        int tb = t0 + (e1 >> 6) * 8 + 2 * (e1 & 3);
        int pa = (e0 >> 2) & 15;
        int pb = (e1 >> 2) & 15;
        for (int m0 = 0; m0 < q; m0 += KB / Fp16.PER_LONG) {
            long v0 = w.get(rowA + m0);
            long v1 = w.get(rowA + m0 + 1);
            aTile[fa * 8 + 2 * ja] = (int) v0;
            aTile[fa * 8 + 2 * ja + 1] = (int) (v0 >> 32);
            aTile[fa * 8 + 2 * ja + 2] = (int) v1;
            aTile[fa * 8 + 2 * ja + 3] = (int) (v1 >> 32);
            int ca = column(m0, pa, q);
            int cb = column(m0, pb, q);
            bTile[e0] = (xh.get(ta * cols + ca) & 0xFFFF) | (xh.get((ta + 1) * cols + ca) << 16);
            bTile[e1] = (xh.get(tb * cols + cb) & 0xFFFF) | (xh.get((tb + 1) * cols + cb) << 16);
            ctx.localBarrier();
            HalfFloat[] a = ctx.mmaLoadA(aTile, KB, warp * 512);
            HalfFloat[] b0 = ctx.mmaLoadB(bTile, KB, 0);
            HalfFloat[] b1 = ctx.mmaLoadB(bTile, KB, 256);
            HalfFloat[] b2 = ctx.mmaLoadB(bTile, KB, 512);
            HalfFloat[] b3 = ctx.mmaLoadB(bTile, KB, 768);
            c0 = ctx.mma(a, b0, c0, MMAShape.M16N8K16);
            c1 = ctx.mma(a, b1, c1, MMAShape.M16N8K16);
            c2 = ctx.mma(a, b2, c2, MMAShape.M16N8K16);
            c3 = ctx.mma(a, b3, c3, MMAShape.M16N8K16);
            ctx.localBarrier();
        }
        int f = f0 + warp * 16;
        ctx.mmaStore(c0, c, f, t0, tokens);
        ctx.mmaStore(c1, c, f, t0 + 8, tokens);
        ctx.mmaStore(c2, c, f, t0 + 16, tokens);
        ctx.mmaStore(c3, c, f, t0 + 24, tokens);
    }

    /** The same with f32 activations [tokens, cols], converted to fp16 as they are staged. */
    static void mmaFloats(KernelContext ctx, LongArray w, FloatArray x, FloatArray c, int rows, int cols, int tokens) {
        int lid = ctx.localIdx;
        int warp = lid >> 5;
        int tilesF = rows / FB;
        int f0 = (ctx.groupIdx % tilesF) * FB;
        int t0 = (ctx.groupIdx / tilesF) * TB;
        int q = cols / Fp16.PER_LONG;
        int[] aTile = ctx.allocateIntLocalArray(FB * KB / 2);
        int[] bTile = ctx.allocateIntLocalArray(KB * TB / 2);
        float[] c0 = ctx.mmaFragment(0f);
        float[] c1 = ctx.mmaFragment(0f);
        float[] c2 = ctx.mmaFragment(0f);
        float[] c3 = ctx.mmaFragment(0f);
        int fa = lid >> 1;
        int ja = (lid & 1) * 2;
        int rowA = (f0 + fa) * q + ja;
        int e0 = lid;
        int e1 = lid + THREADS;
        int ta = t0 + (e0 >> 6) * 8 + 2 * (e0 & 3);
        int tb = t0 + (e1 >> 6) * 8 + 2 * (e1 & 3);
        int pa = (e0 >> 2) & 15;
        int pb = (e1 >> 2) & 15;
        for (int m0 = 0; m0 < q; m0 += KB / Fp16.PER_LONG) {
            long v0 = w.get(rowA + m0);
            long v1 = w.get(rowA + m0 + 1);
            aTile[fa * 8 + 2 * ja] = (int) v0;
            aTile[fa * 8 + 2 * ja + 1] = (int) (v0 >> 32);
            aTile[fa * 8 + 2 * ja + 2] = (int) v1;
            aTile[fa * 8 + 2 * ja + 3] = (int) (v1 >> 32);
            int ca = column(m0, pa, q);
            int cb = column(m0, pb, q);
            int a0 = new HalfFloat(x.get(ta * cols + ca)).getHalfFloatValue() & 0xFFFF;
            int a1 = new HalfFloat(x.get((ta + 1) * cols + ca)).getHalfFloatValue() & 0xFFFF;
            int b0b = new HalfFloat(x.get(tb * cols + cb)).getHalfFloatValue() & 0xFFFF;
            int b1b = new HalfFloat(x.get((tb + 1) * cols + cb)).getHalfFloatValue() & 0xFFFF;
            bTile[e0] = a0 | (a1 << 16);
            bTile[e1] = b0b | (b1b << 16);
            ctx.localBarrier();
            HalfFloat[] a = ctx.mmaLoadA(aTile, KB, warp * 512);
            HalfFloat[] b0 = ctx.mmaLoadB(bTile, KB, 0);
            HalfFloat[] b1 = ctx.mmaLoadB(bTile, KB, 256);
            HalfFloat[] b2 = ctx.mmaLoadB(bTile, KB, 512);
            HalfFloat[] b3 = ctx.mmaLoadB(bTile, KB, 768);
            c0 = ctx.mma(a, b0, c0, MMAShape.M16N8K16);
            c1 = ctx.mma(a, b1, c1, MMAShape.M16N8K16);
            c2 = ctx.mma(a, b2, c2, MMAShape.M16N8K16);
            c3 = ctx.mma(a, b3, c3, MMAShape.M16N8K16);
            ctx.localBarrier();
        }
        int f = f0 + warp * 16;
        ctx.mmaStore(c0, c, f, t0, tokens);
        ctx.mmaStore(c1, c, f, t0 + 8, tokens);
        ctx.mmaStore(c2, c, f, t0 + 16, tokens);
        ctx.mmaStore(c3, c, f, t0 + 24, tokens);
    }

    public static void main(String[] args) {
        for (String way : new String[] {"halves", "floats"}) {
            check(way, 128, 256, 32);
        }
        int[][] shapes = {{2048, 2048, 64}, {6144, 2048, 64}, {2048, 5504, 64}, {151_936, 2048, 64}, {6144, 2048, 512}};
        for (int[] s : shapes) {
            for (String way : new String[] {"halves", "floats", "f32_tiled"}) {
                time(way, s[0], s[1], s[2]);
            }
        }
        System.exit(0);
    }

    /** One shape's operands, random, with the fp16 values both sides use. */
    private record Operands(LongArray w, short[] wh, ShortArray xh, FloatArray x, int rows, int cols, int tokens) {

        static Operands random(int rows, int cols, int tokens) {
            SplittableRandom r = new SplittableRandom(rows * 31L + cols * 7L + tokens);
            short[] wh = new short[rows * cols];
            for (int i = 0; i < wh.length; i++) {
                wh[i] = Float.floatToFloat16((float) ((r.nextDouble() - 0.5) * 0.1));
            }
            LongArray w = new LongArray(rows * Fp16.longsPerRow(cols));
            Fp16.pack((row, col) -> wh[row * cols + col], cols, 0, rows, w);
            ShortArray xh = new ShortArray(tokens * cols);
            FloatArray x = new FloatArray(tokens * cols);
            for (int i = 0; i < tokens * cols; i++) {
                short h = Float.floatToFloat16((float) (r.nextDouble() * 4 - 2));
                xh.set(i, h);
                x.set(i, Float.float16ToFloat(h));      // exactly representable: both ways see the same values
            }
            return new Operands(w, wh, xh, x, rows, cols, tokens);
        }
    }

    /** Runs one way once (then {@code repeats} more times profiled); returns the last kernel time in ns, or -1. */
    private static long run(String way, Operands o, FloatArray c, int repeats) {
        String name = "tc_" + way + "_" + o.rows + "_" + o.cols + "_" + o.tokens;
        try {
            return runOrThrow(way, name, o, c, repeats);
        } catch (Exception | Error e) {           // a way this device or SDK cannot compile or run
            System.out.println("{\"figure\":\"tensor_cores\",\"way\":\"" + way + "\",\"shape\":\"" + o.rows + "x" + o.cols
                    + "x" + o.tokens + "\",\"error\":\"" + String.valueOf(e).replace('"', '\'').replace('\n', ' ') + "\"}");
            return Long.MIN_VALUE;
        }
    }

    private static long runOrThrow(String way, String name, Operands o, FloatArray c, int repeats) throws Exception {
        KernelContext ctx = new KernelContext();
        TaskGraph tg = new TaskGraph(name);
        int groups;
        switch (way) {
            case "halves" -> {
                tg.transferToDevice(DataTransferMode.FIRST_EXECUTION, o.w, o.xh)
                        .task("t", TensorCoreProbe::mmaHalves, ctx, o.w, o.xh, c, o.rows, o.cols, o.tokens);
                groups = (o.rows / FB) * (o.tokens / TB);
            }
            case "floats" -> {
                tg.transferToDevice(DataTransferMode.FIRST_EXECUTION, o.w, o.x)
                        .task("t", TensorCoreProbe::mmaFloats, ctx, o.w, o.x, c, o.rows, o.cols, o.tokens);
                groups = (o.rows / FB) * (o.tokens / TB);
            }
            default -> {
                IntArray meta = new IntArray(StepMeta.TENSOR_CORES + 1);
                meta.set(StepMeta.ROWS, o.tokens);
                meta.set(StepMeta.TILED_FROM, 1);
                FloatArray none = new FloatArray(1);
                FloatArray dec = Fp16.table();
                tg.transferToDevice(DataTransferMode.FIRST_EXECUTION, o.w, o.x, none, dec, meta)
                        .task("t", LinearKernels::linear, ctx, o.w, o.x, c, none, none, dec, meta, StepMeta.ROWS, o.cols,
                                o.rows, 0, 0, 0, 0f, LayerGraphs.LOCAL);
                groups = Math.max(o.rows, ((o.rows + LinearKernels.TF - 1) / LinearKernels.TF)
                        * ((o.tokens + LinearKernels.TT - 1) / LinearKernels.TT));
            }
        }
        tg.transferToHost(DataTransferMode.UNDER_DEMAND, c);
        WorkerGrid1D grid = new WorkerGrid1D(groups * THREADS);
        grid.setLocalWork(THREADS, 1, 1);
        try (TornadoExecutionPlan plan = new TornadoExecutionPlan(tg.snapshot())) {
            plan.withGridScheduler(new GridScheduler(name + ".t", grid));
            TornadoExecutionResult result = plan.execute();
            long ns = -1;
            if (repeats > 0) {
                plan.withProfiler(ProfilerMode.SILENT);
                long best = Long.MAX_VALUE;
                for (int i = 0; i < repeats; i++) {
                    best = Math.min(best, plan.execute().getProfilerResult().getDeviceKernelTime());
                }
                ns = best;
            }
            result.transferToHost(c);
            return ns;
        }
    }

    /** The largest error of one way against a double-precision product, relative to each output's L1 size. */
    private static void check(String way, int rows, int cols, int tokens) {
        Operands o = Operands.random(rows, cols, tokens);
        FloatArray c = new FloatArray(rows * tokens);
        if (run(way, o, c, 0) == Long.MIN_VALUE) {
            return;
        }
        double worst = 0;
        for (int f = 0; f < rows; f++) {
            for (int t = 0; t < tokens; t++) {
                double sum = 0;
                double size = 0;
                for (int k = 0; k < cols; k++) {
                    double p = (double) Float.float16ToFloat(o.wh[f * cols + k]) * o.x.get(t * cols + k);
                    sum += p;
                    size += Math.abs(p);
                }
                // c is [features, tokens] for the MMA ways
                worst = Math.max(worst, Math.abs(c.get(f * tokens + t) - sum) / (size + 1e-30));
            }
        }
        System.out.printf(Locale.ROOT, "{\"figure\":\"tensor_cores_check\",\"way\":\"%s\",\"shape\":\"%dx%dx%d\","
                + "\"max_error_over_l1\":%.3g,\"ok\":%b}%n", way, rows, cols, tokens, worst, worst < 1e-5);
    }

    private static void time(String way, int rows, int cols, int tokens) {
        Operands o = Operands.random(rows, cols, tokens);
        FloatArray c = new FloatArray(rows * tokens);
        long ns = run(way, o, c, 10);
        if (ns <= 0) {
            return;
        }
        double flops = 2.0 * rows * cols * tokens;
        System.out.printf(Locale.ROOT, "{\"figure\":\"tensor_cores_time\",\"way\":\"%s\",\"shape\":\"%dx%dx%d\","
                + "\"kernel_us\":%.1f,\"tflops\":%.2f,\"weight_gb_per_s\":%.0f}%n", way, rows, cols, tokens, ns / 1e3,
                flops / ns / 1e3, rows * (double) cols * 2 / ns);
    }
}
