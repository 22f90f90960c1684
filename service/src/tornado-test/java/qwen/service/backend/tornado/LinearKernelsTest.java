package qwen.service.backend.tornado;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import uk.ac.manchester.tornado.api.GridScheduler;
import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.WorkerGrid1D;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.arrays.LongArray;

/**
 * The device's linear kernels against a double-precision loop over the same fp16 weights, in both
 * ways through them (rows and tiled, forced by the meta's switch) and with the fused RMSNorm on and
 * off: the only difference allowed is f32 rounding and accumulation order, bounded by 1e-5
 * relative to the output's L1 size (the sum of the magnitudes that make it up).
 */
class LinearKernelsTest {

    private static final float EPS = 1e-6f;
    private static int graphs;

    /**
     * tokens, the switch (tiledFrom), normed, bias, residual, columns: the model's uses (c_attn: norm +
     * bias; c_proj: residual; lm_head: norm) in each way. Shapes are not multiples of the tiles, the
     * staged slices or the unrolled stride (37 x 68: 17 longs a row; 37 x 2,060: 515 longs, more than
     * four threads' strides); 64 columns are the whole-model tests' width, where a batch-1 loop runs
     * once.
     */
    @ParameterizedTest
    @CsvSource({"1,16,0,1,1,68", "1,16,1,1,0,68", "1,16,0,0,1,68", "1,16,1,0,0,68", "1,16,1,1,1,2060",
            "3,16,0,0,1,68", "4,16,1,1,0,68", "6,16,1,0,0,68", "3,1,1,1,0,68", "3,1,0,0,1,68",
            "40,16,0,1,1,68", "40,16,1,0,0,68", "33,100,1,1,1,68", "20,16,1,1,1,600", "9,16,1,1,0,64",
            "1,16,1,1,0,64", "9,16,0,0,1,64", "5,16,1,0,1,2060", "17,1,1,0,1,2060"})
    void linearWithBiasResidualAndNormMatchesTheReference(int tokens, int tiledFrom, int normed, int hasBias,
                                                          int accumulate, int cols) {
        checkLinear(tokens, tiledFrom, normed, hasBias, accumulate, cols, 0, 0);
    }

    /**
     * {@link TensorCoreKernels#linear} on a PTX device, beside the portable kernel as the graphs run
     * them, held to the same bound as the f32 ways: tensor-core blocks of 64 features x 32 tokens
     * (37 features and 17-48 tokens leave partial blocks; 1,040 columns are 65 steps), with one
     * group looping over all blocks or one block a group, and steps that stay with the portable
     * kernel (1 and 9 rows; a tiled step of 2 blocks where 3 are asked for; tensor cores off).
     * meta[TENSOR_CORES], the blocks a step needs, is the case's last column.
     */
    @ParameterizedTest
    @CsvSource({"40,1,1,1,0,64,2,1", "40,16,0,0,1,64,2,1", "33,1,1,1,1,1040,2,1", "48,1,1,0,1,1040,1,1",
            "45,32,0,1,0,1040,2,1", "17,1,1,1,1,64,1,1", "1,16,1,1,1,1040,2,1", "9,16,1,1,0,1040,2,1",
            "40,1,1,1,1,1040,2,3", "40,1,1,1,1,1040,2,0"})
    void tensorCoreLinearMatchesTheReference(int tokens, int tiledFrom, int normed, int hasBias, int accumulate, int cols,
                                             int groups, int minBlocks) {
        assumeTensorCores();
        checkLinear(tokens, tiledFrom, normed, hasBias, accumulate, cols, groups, minBlocks);
    }

    /** {@link TensorCoreKernels#gated} on a PTX device, as {@link #tensorCoreLinearMatchesTheReference}. */
    @ParameterizedTest
    @CsvSource({"40,1,64,29", "33,1,1040,1", "70,16,1040,29", "1,16,1040,29", "5,16,64,29"})
    void tensorCoreGatedMatchesTheReference(int tokens, int tiledFrom, int cols, int groups) {
        assumeTensorCores();
        checkGated(tokens, tiledFrom, cols, groups);
    }

    private static void assumeTensorCores() {
        Assumptions.assumeTrue(TornadoBackend.hasTensorCores(TornadoExecutionPlan.DEFAULT_DEVICE),
                "the tensor-core kernels need a PTX device (TornadoVM's MMA intrinsics are PTX only); on an NVIDIA GPU"
                        + " bench/gpu/run.sh runs them");
    }

    /** groups > 0: also {@link TensorCoreKernels#linear}'s task, with that many groups and meta[TENSOR_CORES] = minBlocks. */
    private void checkLinear(int tokens, int tiledFrom, int normed, int hasBias, int accumulate, int cols, int groups,
                             int minBlocks) {
        int rows = 37;
        int max = 48;
        SplittableRandom rnd = new SplittableRandom(tokens * 31L + tiledFrom + normed);
        ShortArray w = halves(rnd, rows * cols);
        LongArray packed = packed(w, rows, cols);
        FloatArray dec = Fp16.table();
        FloatArray x = floats(rnd, max * cols);
        FloatArray bias = floats(rnd, rows);
        FloatArray gain = normed == 1 ? floats(rnd, cols) : new FloatArray(1);
        FloatArray y = floats(rnd, max * rows);
        float[] before = y.toHeapArray();
        IntArray meta = meta(tokens, tiledFrom);
        String name = "lin" + graphs++;
        TaskGraph tg = new TaskGraph(name).transferToDevice(DataTransferMode.EVERY_EXECUTION, packed, x, bias, gain, dec, y, meta)
                .task("t", LinearKernels::linear, new KernelContext(), packed, x, y, bias, gain, dec, meta, StepMeta.ROWS, cols, rows,
                        hasBias, accumulate, normed, EPS, LayerGraphs.LOCAL);
        if (groups > 0) {
            meta.set(StepMeta.TENSOR_CORES, minBlocks);
            FloatArray scratch = new FloatArray(TensorCoreKernels.scratchFloats());
            tg.transferToDevice(DataTransferMode.FIRST_EXECUTION, scratch)
                    .task("tc", TensorCoreKernels::linear, new KernelContext(), packed, x, y, bias, gain, dec, meta, StepMeta.ROWS,
                            cols, rows, hasBias, accumulate, normed, EPS, scratch, groups);
        }
        tg.transferToHost(DataTransferMode.EVERY_EXECUTION, y);
        run(tg, name, rows, groups);
        for (int t = 0; t < max; t++) {
            double s = normed == 1 ? invRms(x, t, cols) : 1;
            for (int r = 0; r < rows; r++) {
                double expected = before[t * rows + r];
                double scale = Math.abs(before[t * rows + r]) + Math.abs(bias.get(r));
                if (t < tokens) {
                    expected = accumulate * expected + hasBias * bias.get(r);
                    for (int c = 0; c < cols; c++) {
                        double g = normed == 1 ? gain.get(c) : 1;
                        double p = (double) f16(w, r * cols + c) * g * x.get(t * cols + c) * s;
                        expected += p;
                        scale += Math.abs(p);
                    }
                }
                assertEquals(expected, y.get(t * rows + r), 1e-5 * scale + 1e-7, "row " + t + " feature " + r);
            }
        }
    }

    @ParameterizedTest
    @CsvSource({"1,16,48", "1,16,300", "2,16,48", "5,16,48", "3,1,48", "40,16,48", "20,16,300", "9,16,64",
            "1,16,64", "1,16,1100", "3,16,1100", "18,1,1100"})
    void gatedAppliesTheNormThenSiluToTheW2Branch(int tokens, int tiledFrom, int cols) {
        checkGated(tokens, tiledFrom, cols, 0);
    }

    /** groups > 0: also {@link TensorCoreKernels#gated}'s task, with that many groups, from one block. */
    private void checkGated(int tokens, int tiledFrom, int cols, int groups) {
        int rows = 29;
        SplittableRandom rnd = new SplittableRandom(100 + tokens + tiledFrom);
        ShortArray w1 = halves(rnd, rows * cols);
        ShortArray w2 = halves(rnd, rows * cols);
        LongArray p1 = packed(w1, rows, cols);
        LongArray p2 = packed(w2, rows, cols);
        FloatArray dec = Fp16.table();
        FloatArray x = floats(rnd, tokens * cols);
        FloatArray gain = floats(rnd, cols);
        FloatArray h = new FloatArray(tokens * rows);
        IntArray meta = meta(tokens, tiledFrom);
        String name = "gated" + graphs++;
        TaskGraph tg = new TaskGraph(name).transferToDevice(DataTransferMode.EVERY_EXECUTION, p1, p2, x, gain, dec, h, meta)
                .task("t", LinearKernels::gated, new KernelContext(), p1, p2, x, h, gain, dec, meta, cols, rows, EPS,
                        LayerGraphs.LOCAL);
        if (groups > 0) {
            meta.set(StepMeta.TENSOR_CORES, 1);
            FloatArray scratch = new FloatArray(TensorCoreKernels.scratchFloats());
            tg.transferToDevice(DataTransferMode.FIRST_EXECUTION, scratch)
                    .task("tc", TensorCoreKernels::gated, new KernelContext(), p1, p2, x, h, gain, dec, meta, cols, rows, EPS,
                            scratch, groups);
        }
        tg.transferToHost(DataTransferMode.EVERY_EXECUTION, h);
        run(tg, name, rows, groups);
        for (int t = 0; t < tokens; t++) {
            double s = invRms(x, t, cols);
            for (int r = 0; r < rows; r++) {
                double up = 0;
                double gate = 0;
                double scale = 0;
                for (int c = 0; c < cols; c++) {
                    double n = (double) gain.get(c) * x.get(t * cols + c) * s;
                    up += f16(w1, r * cols + c) * n;
                    gate += f16(w2, r * cols + c) * n;
                    scale += Math.abs(f16(w1, r * cols + c) * n) + Math.abs(f16(w2, r * cols + c) * n);
                }
                double expected = up * gate / (1 + Math.exp(-gate));
                assertEquals(expected, h.get(t * rows + r), 1e-5 * scale * (1 + Math.abs(up) + Math.abs(gate)) + 1e-7,
                        "row " + t + " feature " + r);
            }
        }
    }

    private static IntArray meta(int tokens, int tiledFrom) {
        IntArray meta = new IntArray(StepMeta.TENSOR_CORES + 1);
        meta.set(StepMeta.ROWS, tokens);
        meta.set(StepMeta.TILED_FROM, tiledFrom);
        return meta;
    }

    /** The reference RMSNorm's 1 / sqrt(mean(x^2) + eps) of row t, in double. */
    private static double invRms(FloatArray x, int t, int cols) {
        double ss = 0;
        for (int c = 0; c < cols; c++) {
            ss += (double) x.get(t * cols + c) * x.get(t * cols + c);
        }
        return 1 / Math.sqrt(ss / cols + EPS);
    }

    /**
     * Both fp16 decodes on the device, over all 63,488 finite bit patterns: the arithmetic one
     * (embedding rows) and the table one every weight load uses, here on the bits as a packed long
     * holds them (in either half of an int, with the other half's bits above).
     */
    @org.junit.jupiter.api.Test
    void halfDecodesEveryFiniteFp16ExactlyOnTheDevice() {
        int n = 1 << 16;
        ShortArray bits = new ShortArray(n);
        for (int i = 0; i < n; i++) {
            bits.set(i, (short) i);
        }
        FloatArray direct = new FloatArray(n);
        FloatArray table = new FloatArray(n);
        FloatArray dec = Fp16.table();
        TaskGraph tg = new TaskGraph("decode")
                .transferToDevice(DataTransferMode.EVERY_EXECUTION, bits, dec)
                .task("t", LinearKernelsTest::decodeAll, new KernelContext(), bits, dec, direct, table)
                .transferToHost(DataTransferMode.EVERY_EXECUTION, direct, table);
        run(tg, "decode", n / LayerGraphs.LOCAL);
        for (int i = 0; i < n; i++) {
            float expected = Float.float16ToFloat((short) i);
            if (!Float.isNaN(expected) && !Float.isInfinite(expected)) {
                assertEquals(expected, direct.get(i), 0f, "half(), fp16 bits 0x" + Integer.toHexString(i));
                assertEquals(expected, table.get(i), 0f, "decode(), fp16 bits 0x" + Integer.toHexString(i));
            }
        }
    }

    /** Even i: the bits in an int's low half under a neighbour's bits; odd i: in its high half. */
    static void decodeAll(KernelContext ctx, ShortArray bits, FloatArray dec, FloatArray direct, FloatArray table) {
        int i = ctx.globalIdx;
        short b = bits.get(i);
        int other = bits.get(i ^ 1) & 0xFFFF;
        int word = (b & 0xFFFF) | (other << 16);
        int shifted = other | (b << 16);
        direct.set(i, Fp16.half(b));
        table.set(i, Fp16.decode(word, dec) * (1 - (i & 1)) + Fp16.decode(shifted >> 16, dec) * (i & 1));
    }

    /** Each long of {@link Fp16#pack}'s layout holds the bits of its four columns, one a quarter apart. */
    @org.junit.jupiter.api.Test
    void packedRowsHoldEachColumnOnceInItsQuarter() {
        int rows = 3;
        int cols = 12;
        ShortArray w = new ShortArray(rows * cols);
        for (int i = 0; i < rows * cols; i++) {
            w.set(i, Float.floatToFloat16(i));
        }
        LongArray p = packed(w, rows, cols);
        int q = Fp16.longsPerRow(cols);
        for (int r = 0; r < rows; r++) {
            for (int m = 0; m < q; m++) {
                for (int k = 0; k < Fp16.PER_LONG; k++) {
                    short bitsOf = (short) (p.get(r * q + m) >> (16 * k));
                    assertEquals(r * cols + m + k * q, Float.float16ToFloat(bitsOf), 0f, "row " + r + " long " + m + " part " + k);
                }
            }
        }
    }

    static LongArray packed(ShortArray w, int rows, int cols) {
        LongArray out = new LongArray(rows * Fp16.longsPerRow(cols));
        Fp16.pack((r, c) -> w.get(r * cols + c), cols, 0, rows, out);
        return out;
    }

    static void run(TaskGraph tg, String name, int groups) {
        run(tg, name, groups, 0);
    }

    /** Runs task t on {@code groups} work-groups and, when {@code tcGroups} > 0, task tc on that many. */
    static void run(TaskGraph tg, String name, int groups, int tcGroups) {
        WorkerGrid1D grid = new WorkerGrid1D(groups * LayerGraphs.LOCAL);
        grid.setLocalWork(LayerGraphs.LOCAL, 1, 1);
        GridScheduler grids = new GridScheduler(name + ".t", grid);
        if (tcGroups > 0) {
            WorkerGrid1D tc = new WorkerGrid1D(tcGroups * LayerGraphs.LOCAL);
            tc.setLocalWork(LayerGraphs.LOCAL, 1, 1);
            grids.addWorkerGrid(name + ".tc", tc);
        }
        try (TornadoExecutionPlan plan = new TornadoExecutionPlan(tg.snapshot())) {
            plan.withGridScheduler(grids).execute();
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    /** Random fp16 weights as raw bits, as the device holds them. */
    static ShortArray halves(SplittableRandom rnd, int n) {
        ShortArray a = new ShortArray(n);
        for (int i = 0; i < n; i++) {
            a.set(i, Float.floatToFloat16((float) (rnd.nextDouble() * 2 - 1)));
        }
        return a;
    }

    static float f16(ShortArray a, int i) {
        return Float.float16ToFloat(a.get(i));
    }

    static FloatArray floats(SplittableRandom rnd, int n) {
        FloatArray a = new FloatArray(n);
        for (int i = 0; i < n; i++) {
            a.set(i, (float) (rnd.nextDouble() * 2 - 1));
        }
        return a;
    }
}
