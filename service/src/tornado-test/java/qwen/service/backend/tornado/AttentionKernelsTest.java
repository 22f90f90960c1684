package qwen.service.backend.tornado;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.List;
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

/**
 * Rotary + KV append, attention and the split combine on the device against {@link ScalarKernels},
 * through the grids {@link LayerGraphs} registers. Each case is a step of sequences, each given as
 * {start position, rows}: positions before start are a random cache already on the device (pages
 * handed out in shuffled order), the step's rows are rotated, appended and attend causally. The
 * reference accumulates in double; the device's f32 output must agree within 2e-5 * (1 + |x|).
 */
class AttentionKernelsTest {

    private static final double TOLERANCE = 2e-5;

    /** Prefill: 70 rows of one sequence over two pages; too many rows to split. */
    @Test
    void prefillOfSeventyRows() {
        check(2, 12, 70, new int[][] {{0, 70}}, 9);
        check(2, 16, 70, new int[][] {{0, 70}}, 10);
    }

    /** More rows than the grids hold (GRID_ROWS): each work-group takes several (row, head) pairs in turn. */
    @Test
    void prefillOfMoreRowsThanTheGrid() {
        check(2, 16, 300, new int[][] {{40, 260}, {0, 40}}, 17);
    }

    /** Batch-1 decode at 701 keys: 11 splits of 64 positions, the last one partly filled. */
    @Test
    void decodeOfOneRowSplitsItsPositions() {
        check(2, 16, 4, new int[][] {{700, 1}}, 11);
        check(2, 12, 4, new int[][] {{700, 1}}, 12);
    }

    /** Three decode rows at lengths that are multiples of neither the tile (32) nor the split. */
    @Test
    void decodeOfThreeRowsAtDifferentLengths() {
        check(3, 12, 4, new int[][] {{333, 1}, {517, 1}, {650, 1}}, 13);
        check(3, 16, 4, new int[][] {{333, 1}, {517, 1}, {650, 1}}, 14);
    }

    /** A chunk of 5 rows beside decode rows, one of them short enough for a single split. */
    @Test
    void mixedChunkAndDecodeRows() {
        check(2, 16, 8, new int[][] {{300, 5}, {64, 1}, {10, 1}}, 15);
    }

    /** The real head_dim (128, one thread per dimension) with a long row and a short one. */
    @Test
    void headDimOfTheRealModel() {
        check(2, 128, 2, new int[][] {{1000, 1}, {95, 1}}, 16);
    }

    @Test
    void headDimsAboveTheKernelsBoundAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> AttentionKernels.requireHeadDim(256));
    }

    private static void check(int heads, int hd, int maxRows, int[][] seqs, long seed) {
        int d = heads * hd;
        int half = hd / 2;
        int pageFloats = 2 * AttentionKernels.PAGE * d;
        SplittableRandom rnd = new SplittableRandom(seed);
        int n = 0;
        int totalPages = 0;
        for (int[] s : seqs) {
            n += s[1];
            totalPages += (s[0] + s[1] + AttentionKernels.PAGE - 1) / AttentionKernels.PAGE;
        }
        int arenaPages = totalPages + 3;
        List<Integer> free = new ArrayList<>();
        for (int p = 0; p < arenaPages; p++) {
            free.add(p);
        }
        for (int i = free.size() - 1; i > 0; i--) {
            free.set(i, free.set(rnd.nextInt(i + 1), free.get(i)));
        }
        StepMeta layout = new StepMeta(maxRows, arenaPages);
        IntArray meta = new IntArray(layout.size());
        meta.set(StepMeta.ROWS, n);
        FloatArray qkv = LinearKernelsTest.floats(rnd, maxRows * 3 * d);
        float[] qkvHost = qkv.toHeapArray();
        FloatArray kv = new FloatArray(arenaPages * pageFloats);
        FloatArray rot = new FloatArray(maxRows * hd + maxRows);
        float[] cos = new float[maxRows * half];
        float[] sin = new float[maxRows * half];
        for (int i = 0; i < maxRows * half; i++) {
            cos[i] = (float) Math.cos(i * 0.37 + seed);
            sin[i] = (float) Math.sin(i * 0.37 + seed);
            rot.set(i, cos[i]);
            rot.set(maxRows * half + i, sin[i]);
        }
        for (int t = 0; t < maxRows; t++) {
            rot.set(2 * maxRows * half + t, 1f + t * 0.01f);
        }
        ScalarKernels ref = new ScalarKernels();
        ref.rope(qkvHost, n, 3 * d, 0, heads, hd, cos, sin);
        ref.rope(qkvHost, n, 3 * d, d, heads, hd, cos, sin);
        float[] q = new float[n * d];
        float[] expected = new float[n * d];
        KvPool pool = new KvPool(d, 1L << 24);
        List<SequenceKv> caches = new ArrayList<>();
        int row = 0;
        int table = 0;
        try {
            for (int[] s : seqs) {
                int start = s[0];
                int rows = s[1];
                int pages = (start + rows + AttentionKernels.PAGE - 1) / AttentionKernels.PAGE;
                int[] ids = new int[pages];
                for (int p = 0; p < pages; p++) {
                    ids[p] = free.removeLast();
                    meta.set(layout.pageTable() + table + p, ids[p]);
                }
                SequenceKv seq = pool.newSequence(1);
                caches.add(seq);
                LayerKv cache = seq.layer(0);
                float[] k = new float[d];
                float[] v = new float[d];
                for (int pos = 0; pos < start; pos++) {
                    int slot = ids[pos / AttentionKernels.PAGE] * pageFloats + (pos % AttentionKernels.PAGE) * d;
                    for (int i = 0; i < d; i++) {
                        k[i] = (float) (rnd.nextDouble() * 2 - 1);
                        v[i] = (float) (rnd.nextDouble() * 2 - 1);
                        kv.set(slot + i, k[i]);
                        kv.set(slot + AttentionKernels.PAGE * d + i, v[i]);
                    }
                    cache.put(pos, k, 0, v, 0);
                }
                for (int t = 0; t < rows; t++) {
                    int pos = start + t;
                    int r = row + t;
                    meta.set(layout.positions() + r, pos);
                    meta.set(layout.slots() + r, ids[pos / AttentionKernels.PAGE] * pageFloats
                            + (pos % AttentionKernels.PAGE) * d);
                    meta.set(layout.pageBase() + r, table);
                    cache.put(pos, qkvHost, r * 3 * d + d, qkvHost, r * 3 * d + 2 * d);
                    for (int i = 0; i < d; i++) {
                        q[r * d + i] = qkvHost[r * 3 * d + i] * (1f + r * 0.01f);
                    }
                }
                ref.attention(q, expected, row, rows, start, cache, heads, hd);
                row += rows;
                table += pages;
            }
        } finally {
            caches.forEach(SequenceKv::close);
        }

        FloatArray out = new FloatArray(maxRows * d);
        FloatArray part = new FloatArray(AttentionKernels.partialFloats(maxRows, heads, hd));
        int groups = AttentionKernels.attendGroups(maxRows, heads);
        KernelContext ctx = new KernelContext();
        TaskGraph tg = new TaskGraph("att")
                .transferToDevice(DataTransferMode.EVERY_EXECUTION, qkv, rot, kv, meta, out, part)
                .task("rope", AttentionKernels::ropeAppend, ctx, qkv, rot, kv, meta, layout.slots(), maxRows, heads, hd,
                        AttentionKernels.ropeGroups(maxRows, heads), LayerGraphs.LOCAL)
                .task("attn", AttentionKernels::attend, ctx, qkv, kv, out, part, meta, layout.positions(),
                        layout.pageBase(), layout.pageTable(), heads, hd, groups, LayerGraphs.LOCAL)
                .task("combine", AttentionKernels::combine, ctx, part, out, meta, layout.positions(), heads, hd, groups,
                        LayerGraphs.LOCAL)
                .transferToHost(DataTransferMode.EVERY_EXECUTION, out);
        GridScheduler grids = new GridScheduler();
        grids.addWorkerGrid("att.rope", grid(AttentionKernels.ropeGroups(maxRows, heads)));
        grids.addWorkerGrid("att.attn", grid(groups));
        grids.addWorkerGrid("att.combine", grid(AttentionKernels.combineGroups(maxRows, heads)));
        try (TornadoExecutionPlan plan = new TornadoExecutionPlan(tg.snapshot())) {
            plan.withGridScheduler(grids).execute();
        } catch (Exception e) {
            throw new AssertionError(e);
        }
        for (int i = 0; i < n * d; i++) {
            assertEquals(expected[i], out.get(i), TOLERANCE * (1 + Math.abs(expected[i])),
                    "head_dim " + hd + ", row " + i / d + ", element " + i % d);
        }
    }

    private static WorkerGrid1D grid(int groups) {
        WorkerGrid1D g = new WorkerGrid1D(groups * LayerGraphs.LOCAL);
        g.setLocalWork(LayerGraphs.LOCAL, 1, 1);
        return g;
    }
}
