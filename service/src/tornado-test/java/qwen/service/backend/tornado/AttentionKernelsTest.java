package qwen.service.backend.tornado;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import qwen.service.backend.cpu.ScalarKernels;
import qwen.service.kv.KvPool;
import qwen.service.kv.LayerKv;
import qwen.service.kv.SequenceKv;
import uk.ac.manchester.tornado.api.GridScheduler;
import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.WorkerGrid1D;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

/** Rotary + KV append and attention on the device against {@link ScalarKernels}. */
class AttentionKernelsTest {

    /** Rows 0..n-1 of one sequence in one step, its cache over two pages (70 positions), as prefill does. */
    @Test
    void ropeAppendThenAttentionMatchTheScalarReference() {
        int heads = 2;
        int hd = 12;
        int d = heads * hd;
        int n = 70;
        int half = hd / 2;
        SplittableRandom rnd = new SplittableRandom(9);
        FloatArray qkv = LinearKernelsTest.floats(rnd, n * 3 * d);
        float[] qkvHost = qkv.toHeapArray();
        StepMeta layout = new StepMeta(n, 4);
        IntArray meta = new IntArray(layout.size());
        meta.set(StepMeta.ROWS, n);
        int[] pages = {3, 1};
        int pageFloats = 2 * AttentionKernels.PAGE * d;
        for (int t = 0; t < n; t++) {
            meta.set(layout.positions() + t, t);
            meta.set(layout.slots() + t, pages[t / AttentionKernels.PAGE] * pageFloats + (t % AttentionKernels.PAGE) * d);
            meta.set(layout.pageBase() + t, 0);
        }
        meta.set(layout.pageTable(), pages[0]);
        meta.set(layout.pageTable() + 1, pages[1]);
        FloatArray rot = new FloatArray(n * hd + n);
        float[] cos = new float[n * half];
        float[] sin = new float[n * half];
        for (int i = 0; i < n * half; i++) {
            cos[i] = (float) Math.cos(i * 0.37);
            sin[i] = (float) Math.sin(i * 0.37);
            rot.set(i, cos[i]);
            rot.set(n * half + i, sin[i]);
        }
        for (int t = 0; t < n; t++) {
            rot.set(2 * n * half + t, 1f + t * 0.01f);
        }
        FloatArray kv = new FloatArray(4 * pageFloats);
        FloatArray out = new FloatArray(n * d);
        KernelContext ctx = new KernelContext();
        TaskGraph tg = new TaskGraph("att")
                .transferToDevice(DataTransferMode.EVERY_EXECUTION, qkv, rot, kv, meta, out)
                .task("rope", AttentionKernels::ropeAppend, ctx, qkv, rot, kv, meta, layout.slots(), n, heads, hd, LayerGraphs.LOCAL)
                .task("attn", AttentionKernels::attend, ctx, qkv, kv, out, meta, layout.positions(), layout.pageBase(),
                        layout.pageTable(), heads, hd, 128, LayerGraphs.LOCAL)
                .transferToHost(DataTransferMode.EVERY_EXECUTION, out);
        GridScheduler grids = new GridScheduler();
        grids.addWorkerGrid("att.rope", grid(n));
        grids.addWorkerGrid("att.attn", grid(n * heads));
        try (TornadoExecutionPlan plan = new TornadoExecutionPlan(tg.snapshot())) {
            plan.withGridScheduler(grids).execute();
        } catch (Exception e) {
            throw new AssertionError(e);
        }

        // The reference: rotate q and k, scale q, cache k and v, attend.
        ScalarKernels ref = new ScalarKernels();
        ref.rope(qkvHost, n, 3 * d, 0, heads, hd, cos, sin);
        ref.rope(qkvHost, n, 3 * d, d, heads, hd, cos, sin);
        try (SequenceKv seq = new KvPool(d, 1L << 20).newSequence(1)) {
            LayerKv cache = seq.layer(0);
            float[] q = new float[n * d];
            for (int t = 0; t < n; t++) {
                cache.put(t, qkvHost, t * 3 * d + d, qkvHost, t * 3 * d + 2 * d);
                for (int i = 0; i < d; i++) {
                    q[t * d + i] = qkvHost[t * 3 * d + i] * (1f + t * 0.01f);
                }
            }
            float[] expected = new float[n * d];
            ref.attention(q, expected, 0, n, 0, cache, heads, hd);
            for (int i = 0; i < n * d; i++) {
                assertEquals(expected[i], out.get(i), 1e-5 * (1 + Math.abs(expected[i])), "element " + i);
            }
        }
    }

    private static WorkerGrid1D grid(int groups) {
        WorkerGrid1D g = new WorkerGrid1D(groups * LayerGraphs.LOCAL);
        g.setLocalWork(LayerGraphs.LOCAL, 1, 1);
        return g;
    }

    private static void run(TaskGraph tg, String name, int groups) {
        try (TornadoExecutionPlan plan = new TornadoExecutionPlan(tg.snapshot())) {
            plan.withGridScheduler(new GridScheduler(name + ".t", grid(groups))).execute();
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }
}
