package qwen.service.backend.tornado;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import uk.ac.manchester.tornado.api.GridScheduler;
import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.WorkerGrid1D;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

/**
 * The device's linear kernels against a double-precision loop over the same fp16 weights: the
 * only difference allowed is f32 accumulation order, bounded by 1e-5 relative to the row's L1 size.
 */
class LinearKernelsTest {

    private static int graphs;

    @ParameterizedTest
    @ValueSource(ints = {1, 3, 4, 6})
    void linearWithBiasAndResidualMatchesTheReference(int tokens) {
        int rows = 37;
        int cols = 70;
        SplittableRandom rnd = new SplittableRandom(tokens);
        ShortArray w = halves(rnd, rows * cols);
        FloatArray x = floats(rnd, 8 * cols);
        FloatArray bias = floats(rnd, rows);
        FloatArray y = floats(rnd, 8 * rows);
        float[] before = y.toHeapArray();
        IntArray meta = new IntArray(2);
        meta.set(StepMeta.ROWS, tokens);
        String name = "lin" + graphs++;
        TaskGraph tg = new TaskGraph(name)
                .transferToDevice(DataTransferMode.EVERY_EXECUTION, w, x, bias, y, meta)
                .task("t", LinearKernels::linear, new KernelContext(), w, x, y, bias, meta, StepMeta.ROWS, cols, rows, 1, 1,
                        LayerGraphs.LOCAL)
                .transferToHost(DataTransferMode.EVERY_EXECUTION, y);
        run(tg, name, rows);
        for (int t = 0; t < 8; t++) {
            for (int r = 0; r < rows; r++) {
                double expected = before[t * rows + r];
                double scale = Math.abs(before[t * rows + r]) + Math.abs(bias.get(r));
                if (t < tokens) {
                    expected += bias.get(r);
                    for (int c = 0; c < cols; c++) {
                        double p = (double) f16(w, r * cols + c) * x.get(t * cols + c);
                        expected += p;
                        scale += Math.abs(p);
                    }
                }
                assertEquals(expected, y.get(t * rows + r), 1e-5 * scale + 1e-7, "row " + t + " feature " + r);
            }
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 5})
    void gatedAppliesSiluToTheW2Branch(int tokens) {
        int rows = 29;
        int cols = 48;
        SplittableRandom rnd = new SplittableRandom(100 + tokens);
        ShortArray w1 = halves(rnd, rows * cols);
        ShortArray w2 = halves(rnd, rows * cols);
        FloatArray x = floats(rnd, tokens * cols);
        FloatArray h = new FloatArray(tokens * rows);
        IntArray meta = new IntArray(2);
        meta.set(StepMeta.ROWS, tokens);
        String name = "gated" + graphs++;
        TaskGraph tg = new TaskGraph(name)
                .transferToDevice(DataTransferMode.EVERY_EXECUTION, w1, w2, x, h, meta)
                .task("t", LinearKernels::gated, new KernelContext(), w1, w2, x, h, meta, cols, rows, LayerGraphs.LOCAL)
                .transferToHost(DataTransferMode.EVERY_EXECUTION, h);
        run(tg, name, rows);
        for (int t = 0; t < tokens; t++) {
            for (int r = 0; r < rows; r++) {
                double up = 0;
                double gate = 0;
                for (int c = 0; c < cols; c++) {
                    up += (double) f16(w1, r * cols + c) * x.get(t * cols + c);
                    gate += (double) f16(w2, r * cols + c) * x.get(t * cols + c);
                }
                double expected = up * gate / (1 + Math.exp(-gate));
                assertEquals(expected, h.get(t * rows + r), 1e-4 * (1 + Math.abs(expected)), "row " + t + " feature " + r);
            }
        }
    }

    /** The fp16 decode every weight load uses, on the device, over all 63,488 finite bit patterns. */
    @org.junit.jupiter.api.Test
    void halfDecodesEveryFiniteFp16ExactlyOnTheDevice() {
        int n = 1 << 16;
        ShortArray bits = new ShortArray(n);
        for (int i = 0; i < n; i++) {
            bits.set(i, (short) i);
        }
        FloatArray out = new FloatArray(n);
        TaskGraph tg = new TaskGraph("decode")
                .transferToDevice(DataTransferMode.EVERY_EXECUTION, bits)
                .task("t", LinearKernelsTest::decodeAll, new KernelContext(), bits, out)
                .transferToHost(DataTransferMode.EVERY_EXECUTION, out);
        run(tg, "decode", n / LayerGraphs.LOCAL);
        for (int i = 0; i < n; i++) {
            float expected = Float.float16ToFloat((short) i);
            if (!Float.isNaN(expected) && !Float.isInfinite(expected)) {
                assertEquals(expected, out.get(i), 0f, "fp16 bits 0x" + Integer.toHexString(i));
            }
        }
    }

    static void decodeAll(KernelContext ctx, ShortArray bits, FloatArray out) {
        int i = ctx.globalIdx;
        out.set(i, LinearKernels.half(bits.get(i)));
    }

    static void run(TaskGraph tg, String name, int groups) {
        WorkerGrid1D grid = new WorkerGrid1D(groups * LayerGraphs.LOCAL);
        grid.setLocalWork(LayerGraphs.LOCAL, 1, 1);
        try (TornadoExecutionPlan plan = new TornadoExecutionPlan(tg.snapshot())) {
            plan.withGridScheduler(new GridScheduler(name + ".t", grid)).execute();
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
