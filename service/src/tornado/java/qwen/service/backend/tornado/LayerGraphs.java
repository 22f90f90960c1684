package qwen.service.backend.tornado;

import java.util.ArrayList;
import java.util.List;
import qwen.service.model.QwenConfig;
import uk.ac.manchester.tornado.api.GridScheduler;
import uk.ac.manchester.tornado.api.ImmutableTaskGraph;
import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.WorkerGrid1D;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.LongArray;

/**
 * The one builder of the shard's task graphs: every block gets the same tasks from
 * {@link #block}, so a fix here is a fix for every layer and dtype.
 *
 * <p>Task order of one step (T rows; the first shard starts with embed, the last ends with the
 * head):
 * <pre>
 *   embed            x = wte[token]                                (first shard only)
 *   per block l:
 *     l{l}_qkv       qkv = c_attn(RMSNorm(x, ln_1)) + bias            (norm fused in)
 *     l{l}_rope      q, k rotated (q times logn); k, v written to the KV slot of each row
 *     l{l}_attn      att = softmax(q K^T / sqrt(head_dim)) V       (causal, per row and head;
 *                    with few rows, per split of the positions)
 *     l{l}_attn_combine  att = the splits' partial softmaxes merged  (rows that were split)
 *     l{l}_proj      x  += attn.c_proj(att)
 *     l{l}_mlp       hid = w1(n) * silu(w2(n)), n = RMSNorm(x, ln_2)  (norm fused in)
 *     l{l}_down      x  += mlp.c_proj(hid)
 *   gather           rows whose logits are wanted                  (last shard only)
 *   head             logits = lm_head(RMSNorm(rows, ln_f))          (norm fused in)
 * </pre>
 * On a PTX device each matrix operation has a second task beside it, {@code l{l}_qkv_tc} and so
 * on ({@link TensorCoreKernels}), which does the step's work instead when it is large enough.
 * A TaskGraph holds a bounded number of tasks, so the blocks are split into graphs of
 * {@code blocksPerGraph}; graph k consumes graph k-1's device buffers (persistOnDevice /
 * consumeFromDevice) and a step runs the graphs in order. Weights and KV arenas go to the device
 * with the first step and stay; meta and rot (and x on shards after the first) go every step;
 * outputs come back on demand, only the rows used.
 */
final class LayerGraphs {

    /** Threads per work-group of every kernel. */
    static final int LOCAL = 128;

    /** Suffix of the id of an operation's tensor-core task (PTX devices), beside the operation's own. */
    static final String TENSOR_CORE_TASK = "_tc";

    private final QwenConfig cfg;
    private final DeviceWeights w;
    private final DeviceKv kv;
    private final StepBuffers b;
    private final String prefix;
    private final boolean tensorCores;
    private final GridScheduler grids = new GridScheduler();
    private final KernelContext ctx = new KernelContext();

    /** @param tensorCores give matrices that fit it {@link TensorCoreKernels}' kernels (PTX devices only) */
    LayerGraphs(QwenConfig cfg, DeviceWeights weights, DeviceKv kv, StepBuffers buffers, String prefix, boolean tensorCores) {
        this.tensorCores = tensorCores;
        this.cfg = cfg;
        this.w = weights;
        this.kv = kv;
        this.b = buffers;
        this.prefix = prefix;
    }

    /** Task id of an operation of block {@code layer}: named once, here. */
    static String taskId(int layer, String op) {
        return "l" + layer + "_" + op;
    }

    GridScheduler grids() {
        return grids;
    }

    /** The graphs of one step, in execution order. */
    List<ImmutableTaskGraph> build(int blocksPerGraph) {
        AttentionKernels.requireHeadDim(cfg.headDim());
        List<DeviceWeights.Layer> layers = w.layers();
        int graphs = Math.max(1, (layers.size() + blocksPerGraph - 1) / blocksPerGraph);
        Object[] shared = sharedBuffers();
        List<ImmutableTaskGraph> out = new ArrayList<>();
        String previous = null;
        for (int g = 0; g < graphs; g++) {
            String name = prefix + g;
            TaskGraph tg = new TaskGraph(name);
            boolean first = g == 0;
            boolean last = g == graphs - 1;
            if (first) {
                inputs(tg);
            } else {
                tg.consumeFromDevice(previous, shared);
            }
            int from = g * blocksPerGraph;
            int to = Math.min(layers.size(), from + blocksPerGraph);
            for (int l = from; l < to; l++) {
                DeviceWeights.Layer lw = layers.get(l);
                tg.transferToDevice(DataTransferMode.FIRST_EXECUTION, lw.ln1(), lw.cAttn(), lw.cAttnBias(), lw.attnCProj(),
                        lw.ln2(), lw.w1(), lw.w2(), lw.mlpCProj(), kv.arena(l));
                block(tg, name, l, lw);
            }
            if (last) {
                outputs(tg, name);
            } else {
                tg.persistOnDevice(shared);
            }
            out.add(tg.snapshot());
            previous = name;
        }
        return out;
    }

    private Object[] sharedBuffers() {
        return new Object[] {b.meta, b.rot, b.x, b.qkv, b.att, b.part, b.hid, b.none, b.f16, b.scratch};
    }

    private void inputs(TaskGraph tg) {
        tg.transferToDevice(DataTransferMode.EVERY_EXECUTION, b.meta, b.rot);
        if (w.wte() != null) {
            tg.transferToDevice(DataTransferMode.FIRST_EXECUTION, w.wte(), b.x);
            task(tg, tg.getTaskGraphName(), "embed", b.layout.maxRows(), LOCAL);
            tg.task("embed", RowKernels::embed, ctx, w.wte(), b.meta, b.layout.tokens(), b.x, cfg.hiddenSize(), LOCAL);
        } else {
            tg.transferToDevice(DataTransferMode.EVERY_EXECUTION, b.x);
        }
        tg.transferToDevice(DataTransferMode.FIRST_EXECUTION, b.qkv, b.att, b.part, b.hid, b.none, b.f16, b.scratch);
    }

    /** One transformer block (SPEC 3.2), in the model's order. */
    private void block(TaskGraph tg, String graph, int l, DeviceWeights.Layer lw) {
        int d = cfg.hiddenSize();
        int f = cfg.ffnDim();
        int rows = b.layout.maxRows();
        StepMeta m = b.layout;
        linear(tg, graph, taskId(l, "qkv"), lw.cAttn(), b.x, b.qkv, lw.cAttnBias(), lw.ln1(), StepMeta.ROWS, d, cfg.qkvDim(),
                1, 0, 1);
        String id = taskId(l, "rope");
        int ropeGroups = AttentionKernels.ropeGroups(rows, cfg.numHeads());
        task(tg, graph, id, ropeGroups, LOCAL);
        tg.task(id, AttentionKernels::ropeAppend, ctx, b.qkv, b.rot, kv.arena(l), b.meta, m.slots(), rows, cfg.numHeads(),
                cfg.headDim(), ropeGroups, LOCAL);
        int groups = AttentionKernels.attendGroups(rows, cfg.numHeads());
        id = taskId(l, "attn");
        task(tg, graph, id, groups, LOCAL);
        tg.task(id, AttentionKernels::attend, ctx, b.qkv, kv.arena(l), b.att, b.part, b.meta, m.positions(), m.pageBase(),
                m.pageTable(), cfg.numHeads(), cfg.headDim(), groups, LOCAL);
        id = taskId(l, "attn_combine");
        task(tg, graph, id, AttentionKernels.combineGroups(rows, cfg.numHeads()), LOCAL);
        tg.task(id, AttentionKernels::combine, ctx, b.part, b.att, b.meta, m.positions(), cfg.numHeads(), cfg.headDim(),
                groups, LOCAL);
        linear(tg, graph, taskId(l, "proj"), lw.attnCProj(), b.att, b.x, b.none, b.none, StepMeta.ROWS, d, d, 0, 1, 0);
        gated(tg, graph, taskId(l, "mlp"), lw);
        linear(tg, graph, taskId(l, "down"), lw.mlpCProj(), b.hid, b.x, b.none, b.none, StepMeta.ROWS, f, d, 0, 1, 0);
    }

    /** The MLP's w1/w2 task ({@link LinearKernels#gated}) and, as for {@link #linear}, its tensor-core task. */
    private void gated(TaskGraph tg, String graph, String id, DeviceWeights.Layer lw) {
        int d = cfg.hiddenSize();
        int f = cfg.ffnDim();
        linearTask(tg, graph, id, f);
        tg.task(id, LinearKernels::gated, ctx, lw.w1(), lw.w2(), b.x, b.hid, lw.ln2(), b.f16, b.meta, d, f, cfg.rmsEps(), LOCAL);
        if (tensorCores && TensorCoreKernels.fits(d)) {
            String tc = id + TENSOR_CORE_TASK;
            int groups = TensorCoreKernels.groups(f, b.layout.maxRows());
            task(tg, graph, tc, groups, LOCAL);
            tg.task(tc, TensorCoreKernels::gated, ctx, lw.w1(), lw.w2(), b.x, b.hid, lw.ln2(), b.f16, b.meta, d, f,
                    cfg.rmsEps(), b.scratch, groups);
        }
    }

    /**
     * A task y (+)= W n(x) (+ bias) ({@link LinearKernels#linear}'s arguments), and beside it the
     * same on the tensor cores ({@link TensorCoreKernels}) where the plan has them and the matrix
     * fits: each step does its work in one of the two.
     */
    private void linear(TaskGraph tg, String graph, String id, LongArray w, FloatArray x, FloatArray y, FloatArray bias,
                        FloatArray gain, int countSlot, int cols, int rows, int hasBias, int accumulate, int normed) {
        linearTask(tg, graph, id, rows);
        tg.task(id, LinearKernels::linear, ctx, w, x, y, bias, gain, b.f16, b.meta, countSlot, cols, rows, hasBias,
                accumulate, normed, cfg.rmsEps(), LOCAL);
        if (tensorCores && TensorCoreKernels.fits(cols)) {
            String tc = id + TENSOR_CORE_TASK;
            int groups = TensorCoreKernels.groups(rows, b.layout.maxRows());
            task(tg, graph, tc, groups, LOCAL);
            tg.task(tc, TensorCoreKernels::linear, ctx, w, x, y, bias, gain, b.f16, b.meta, countSlot, cols, rows, hasBias,
                    accumulate, normed, cfg.rmsEps(), b.scratch, groups);
        }
    }

    private void outputs(TaskGraph tg, String graph) {
        if (w.lmHead() == null) {
            tg.transferToHost(DataTransferMode.UNDER_DEMAND, b.x);
            return;
        }
        int d = cfg.hiddenSize();
        int rows = b.layout.maxRows();
        tg.transferToDevice(DataTransferMode.FIRST_EXECUTION, w.lnF(), w.lmHead(), b.gathered, b.logits);
        task(tg, graph, "gather", rows, LOCAL);
        tg.task("gather", RowKernels::gather, ctx, b.x, b.meta, b.layout.logitRows(), b.gathered, d, LOCAL);
        linear(tg, graph, "head", w.lmHead(), b.gathered, b.logits, b.none, w.lnF(), StepMeta.LOGIT_ROWS, d, cfg.vocabSize(), 0, 0,
                1);
        tg.transferToHost(DataTransferMode.UNDER_DEMAND, b.logits);
    }

    /**
     * Registers the grid of a linear kernel with {@code features} outputs per row: one group per
     * feature for its rows way, or, if more, the tiled way's blocks for a full step.
     */
    private void linearTask(TaskGraph tg, String graph, String id, int features) {
        int tiles = ((features + LinearKernels.TF - 1) / LinearKernels.TF)
                * ((b.layout.maxRows() + LinearKernels.TT - 1) / LinearKernels.TT);
        task(tg, graph, id, Math.max(features, tiles), LOCAL);
    }

    /** Registers a grid of {@code groups} work-groups of {@code local} threads for a task. */
    private void task(TaskGraph tg, String graph, String id, int groups, int local) {
        WorkerGrid1D grid = new WorkerGrid1D(groups * local);
        grid.setLocalWork(local, 1, 1);
        grids.addWorkerGrid(graph + "." + id, grid);
    }
}
