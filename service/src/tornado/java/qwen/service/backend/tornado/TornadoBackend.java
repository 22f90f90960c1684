package qwen.service.backend.tornado;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.IntStream;
import qwen.service.backend.ChunkOutput;
import qwen.service.backend.ComputeBackend;
import qwen.service.backend.SequenceChunk;
import qwen.service.backend.cpu.RopeTable;
import qwen.service.backend.cpu.RotaryTables;
import qwen.service.kv.KvPool;
import qwen.service.model.QwenConfig;
import qwen.service.model.ShardWeights;
import uk.ac.manchester.tornado.api.DataRange;
import uk.ac.manchester.tornado.api.ImmutableTaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.TornadoExecutionResult;
import uk.ac.manchester.tornado.api.TornadoProfilerResult;
import uk.ac.manchester.tornado.api.enums.ProfilerMode;
import uk.ac.manchester.tornado.api.enums.TornadoVMBackendType;
import uk.ac.manchester.tornado.api.common.TornadoDevice;

/**
 * The Qwen-1 forward pass on a TornadoVM device (PTX on NVIDIA GPUs, OpenCL elsewhere): the
 * shard's blocks compiled into one execution plan ({@link LayerGraphs}), weights as fp16 and the
 * KV cache resident on the device, f32 activations and accumulation. A step sends the rows' token
 * ids (or hidden rows), positions, page table and rotary tables, runs the plan's graphs in order
 * and brings back only the logits (or hidden rows) it produced.
 */
public final class TornadoBackend implements ComputeBackend {

    /** Blocks per TaskGraph: TornadoVM caps a graph's tasks, so a shard runs several graphs. */
    static final int BLOCKS_PER_GRAPH = 6;

    /**
     * Most positions a sequence may reach: a chosen bound, Qwen-1.8B's trained context. Attention
     * streams the cache in tiles and splits long sequences across work-groups, so the kernels have
     * no bound of their own.
     */
    static final int MAX_CONTEXT = 8192;

    /**
     * Row count from which the linear kernels stage weights in local memory for many rows at once
     * (prefill, large batches) rather than stream them once per few rows (decode). Measured on an
     * H100 (2026-11-27, GpuBench): since the tiled way prefetches its next slice it beats the rows
     * way at 32 sequences (1,216 against 862 tok/s) and at 48 (1,408 against 873); before that the
     * rows way won at 32 (731 against 555). At 16 the rows way still wins (826 against 794).
     */
    static final int TILED_FROM = 32;

    /**
     * Tensor-core blocks a tiled step needs before it takes them ({@link TensorCoreKernels}): with
     * fewer than about one a multiprocessor they left the H100 idle and lost to the f32 tiled way
     * (mlp.c_proj and attn.c_proj at 64 rows, 64 blocks: 9.15 against 8.78 ms and 3.64 against 3.39
     * ms for 24 blocks; c_attn, w1/w2 and lm_head, 172-4,748 blocks, ran 1.3-2.5x faster).
     */
    static final int TENSOR_CORE_BLOCKS = 128;

    private static final AtomicInteger PLANS = new AtomicInteger();

    private final ShardWeights weights;
    private final QwenConfig cfg;
    private final TornadoDevice device;
    private final DeviceKv kv;
    private final StepBuffers buffers;
    private final int maxContext;
    private final TornadoExecutionPlan plan;
    private final int graphs;
    private final long deviceBytes;
    private final boolean cudaGraphs;
    private List<long[]> profile;
    private Map<String, Long> opProfile = Map.of();
    private long[] lastTimes = new long[3];
    private int tiledFrom = TILED_FROM;
    private final boolean tensorCoreKernels;
    /** meta[TENSOR_CORES]: the blocks a tiled step needs for the tensor cores, 0 while they are off. */
    private int tensorCoreBlocks;

    /**
     * Uploads nothing yet: the first step compiles the kernels and moves the weights.
     *
     * @param maxRows most token rows per step
     * @param kvBudgetBytes bytes of KV cache on the device
     * @param cudaGraphs on a PTX device, record the launches at the first step and replay them after
     * @param tensorCores on a PTX device, give the matrix operations {@link TensorCoreKernels}' tasks
     */
    TornadoBackend(ShardWeights weights, TornadoDevice device, int maxRows, long kvBudgetBytes, boolean cudaGraphs,
                   boolean tensorCores) {
        this.weights = weights;
        this.cfg = weights.config();
        this.device = device;
        this.maxContext = MAX_CONTEXT;
        this.kv = new DeviceKv(weights.layers().size(), cfg.projDim(), kvBudgetBytes);
        this.tensorCoreKernels = tensorCores && hasTensorCores(device);
        this.tensorCoreBlocks = tensorCoreKernels ? TENSOR_CORE_BLOCKS : 0;
        this.buffers = new StepBuffers(cfg, maxRows, kv.pages(), weights.range().head(), tensorCoreKernels);
        DeviceWeights dw = DeviceWeights.of(weights);
        LayerGraphs builder = new LayerGraphs(cfg, dw, kv, buffers, "qwen" + PLANS.incrementAndGet() + "_g",
                tensorCoreKernels);
        List<ImmutableTaskGraph> built = builder.build(BLOCKS_PER_GRAPH);
        this.graphs = built.size();
        this.plan = new TornadoExecutionPlan(built.toArray(ImmutableTaskGraph[]::new));
        plan.withGridScheduler(builder.grids()).withDevice(device);
        // TornadoVM decides at the plan's first execution whether to record a CUDA graph.
        this.cudaGraphs = cudaGraphs && (device.getTornadoVMBackend() == TornadoVMBackendType.PTX
                || device.getTornadoVMBackend() == TornadoVMBackendType.CUDA);
        if (this.cudaGraphs) {
            plan.withCUDAGraph();
        }
        this.deviceBytes = dw.bytes() + kv.bytes() + buffers.bytes();
    }

    /**
     * Whether the plan uses {@link TensorCoreKernels} on this device: TornadoVM has MMA intrinsics
     * for PTX only (NVIDIA GPUs from Ampere on, which the PTX backend targets).
     */
    static boolean hasTensorCores(TornadoDevice device) {
        return device.getTornadoVMBackend() == TornadoVMBackendType.PTX;
    }

    @Override
    public synchronized List<ChunkOutput> forward(List<SequenceChunk> chunks) {
        long t0 = System.nanoTime();
        int rows = fill(chunks);
        long t1 = System.nanoTime();
        TornadoExecutionResult result = null;
        Map<String, Long> ops = profile == null ? null : new LinkedHashMap<>();
        if (profile != null) {
            profile.clear();
        }
        for (int g = 0; g < graphs; g++) {
            result = plan.withGraph(g).execute();
            if (profile != null) {
                TornadoProfilerResult p = result.getProfilerResult();
                profile.add(new long[] {p.getDeviceKernelTime(), p.getKernelDispatchTime(), p.getTotalTime(),
                        p.getDataTransfersTime()});
                kernelTimesByOp(p.getProfileLog()).forEach((op, ns) -> ops.merge(op, ns, Long::sum));
            }
        }
        long t2 = System.nanoTime();
        if (ops != null) {
            opProfile = ops;
        }
        List<ChunkOutput> out = outputs(chunks, rows, result);
        lastTimes = new long[] {t1 - t0, t2 - t1, System.nanoTime() - t2};
        return out;
    }

    /** Writes the step's meta, rotary tables and (after the first shard) hidden rows; returns the row count. */
    private int fill(List<SequenceChunk> chunks) {
        StepMeta m = buffers.layout;
        int d = cfg.hiddenSize();
        int half = cfg.headDim() / 2;
        int rows = 0;
        for (SequenceChunk c : chunks) {
            rows += c.tokens();
            if (c.startPos() + c.tokens() > maxContext) {
                throw new IllegalArgumentException("a sequence would reach position " + (c.startPos() + c.tokens())
                        + ", beyond the " + maxContext + " positions the TornadoVM backend attends over");
            }
        }
        if (rows > m.maxRows()) {
            throw new IllegalArgumentException("step of " + rows + " rows exceeds the device's " + m.maxRows());
        }
        RotaryTables rotary = RotaryTables.of(chunks, cfg);
        int row = 0;
        int table = 0;
        int logitRows = 0;
        for (int ci = 0; ci < chunks.size(); ci++) {
            SequenceChunk c = chunks.get(ci);
            DeviceKv.SequencePages pages = kv.of(c.kv());
            pages.fit(c.startPos() + c.tokens());
            for (int l = 0; l < weights.layers().size(); l++) {
                c.kv().layer(l).reserve(c.startPos() + c.tokens());
            }
            for (int p = 0; p < pages.count(); p++) {
                buffers.meta.set(m.pageTable() + table + p, pages.page(p));
            }
            float[] cos = rotary.cos(ci);
            float[] sin = rotary.sin(ci);
            for (int t = 0; t < c.tokens(); t++, row++) {
                int pos = c.startPos() + t;
                buffers.meta.set(m.tokens() + row, c.tokenIds()[t]);
                buffers.meta.set(m.positions() + row, pos);
                buffers.meta.set(m.slots() + row, pages.page(pos / AttentionKernels.PAGE) * kv.pageFloats()
                        + (pos % AttentionKernels.PAGE) * d);
                buffers.meta.set(m.pageBase() + row, table);
                for (int i = 0; i < half; i++) {
                    buffers.rot.set(row * half + i, cos[t * half + i]);
                    buffers.rot.set(m.maxRows() * half + row * half + i, sin[t * half + i]);
                }
                buffers.rot.set(2 * m.maxRows() * half + row,
                        cfg.useLognAttn() ? RopeTable.lognFactor(pos, cfg.seqLength()) : 1f);
                if (c.hiddenIn() != null && !weights.range().embedding()) {
                    MemorySegment.copy(c.hiddenIn(), t * d, buffers.x.getSegment(), ValueLayout.JAVA_FLOAT,
                            (long) row * d * Float.BYTES, d);
                }
            }
            table += pages.count();
            if (c.wantLogits() && weights.range().head()) {
                buffers.meta.set(m.logitRows() + logitRows++, row - 1);
            }
        }
        buffers.meta.set(StepMeta.ROWS, rows);
        buffers.meta.set(StepMeta.LOGIT_ROWS, logitRows);
        buffers.meta.set(StepMeta.TILED_FROM, tiledFrom);
        buffers.meta.set(StepMeta.TENSOR_CORES, tensorCoreBlocks);
        return rows;
    }

    private List<ChunkOutput> outputs(List<SequenceChunk> chunks, int rows, TornadoExecutionResult result) {
        List<ChunkOutput> out = new ArrayList<>(chunks.size());
        int d = cfg.hiddenSize();
        if (!weights.range().head()) {
            result.transferToHost(new DataRange(buffers.x).withSize((long) rows * d));
            int row = 0;
            for (SequenceChunk c : chunks) {
                float[] hidden = new float[c.tokens() * d];
                MemorySegment.copy(buffers.x.getSegment(), ValueLayout.JAVA_FLOAT, (long) row * d * Float.BYTES, hidden, 0,
                        hidden.length);
                out.add(new ChunkOutput(hidden, null));
                row += c.tokens();
            }
            return out;
        }
        int wanted = buffers.meta.get(StepMeta.LOGIT_ROWS);
        int vocab = cfg.vocabSize();
        if (wanted > 0) {
            result.transferToHost(new DataRange(buffers.logits).withSize((long) wanted * vocab));
        }
        // One row of 151,936 logits a sequence: at 64 sequences, 39 MB copied out of the transfer
        // buffer, on every core rather than one.
        float[][] rowsOut = new float[wanted][];
        MemorySegment logits = buffers.logits.getSegment();
        IntStream.range(0, wanted).parallel().forEach(r -> {
            rowsOut[r] = new float[vocab];
            MemorySegment.copy(logits, ValueLayout.JAVA_FLOAT, (long) r * vocab * Float.BYTES, rowsOut[r], 0, vocab);
        });
        int i = 0;
        for (SequenceChunk c : chunks) {
            out.add(new ChunkOutput(null, c.wantLogits() ? rowsOut[i++] : null));
        }
        return out;
    }

    @Override
    public KvPool newKvPool(long budgetBytes) {
        return KvPool.accountingOnly(cfg.projDim(), budgetBytes);
    }

    @Override
    public ShardWeights weights() {
        return weights;
    }

    @Override
    public String device() {
        return "tornado: " + device.getDeviceName() + " (" + device.getTornadoVMBackend() + "), fp16 weights, "
                + (deviceBytes >> 20) + " MiB on the device" + (cudaGraphs ? ", CUDA graphs" : "")
                + (tensorCoreKernels ? ", tensor cores" : "");
    }

    /**
     * Turns TornadoVM's profiler on or off; while on, each step records per graph its kernel,
     * kernel-dispatch, total and transfer times in nanoseconds (what the GPU benchmark reports).
     */
    synchronized void profiling(boolean on) {
        if (on) {
            plan.withProfiler(ProfilerMode.SILENT);
        } else {
            plan.withoutProfiler();
        }
        profile = on ? new ArrayList<>() : null;
    }

    /** The last step's times per graph while profiling: {kernel, dispatch, total, transfers} ns. */
    synchronized List<long[]> lastProfile() {
        return profile == null ? List.of() : List.copyOf(profile);
    }

    /**
     * The last step's device kernel time per operation while profiling, in nanoseconds summed over
     * the blocks ({@code qkv}, {@code rope}, {@code attn}, {@code proj}, {@code mlp}, {@code down},
     * {@code head}...), in task order.
     */
    synchronized Map<String, Long> lastOpProfile() {
        return opProfile;
    }

    /** A task's entry in TornadoVM's profile log: its graph-qualified id, then its timers. */
    private static final Pattern TASK_ENTRY = Pattern.compile("\"[\\w]+\\.([\\w]+)\": \\{([^{}]*)\\}");
    private static final Pattern KERNEL_TIME = Pattern.compile("\"TASK_KERNEL_TIME\": \"(\\d+)\"");

    /**
     * Sums the kernel times of the last execution of each task by operation. The log accumulates an
     * entry per task and execution, so the last entry of a task is this step's.
     */
    static Map<String, Long> kernelTimesByOp(String log) {
        Map<String, Long> lastByTask = new LinkedHashMap<>();
        Matcher m = TASK_ENTRY.matcher(log);
        while (m.find()) {
            Matcher k = KERNEL_TIME.matcher(m.group(2));
            if (k.find()) {
                lastByTask.remove(m.group(1));
                lastByTask.put(m.group(1), Long.parseLong(k.group(1)));
            }
        }
        Map<String, Long> byOp = new LinkedHashMap<>();
        lastByTask.forEach((task, ns) -> byOp.merge(task.replaceFirst("^l\\d+_", ""), ns, Long::sum));
        return byOp;
    }

    /**
     * The row count from which the linear kernels take their tiled way in later steps, for the GPU
     * benchmark's comparison of the two ways at the threshold; it travels in the step's meta, so the
     * compiled plan stays as it is.
     */
    synchronized void tiledFrom(int rows) {
        this.tiledFrom = rows;
    }

    /**
     * Whether the tiled way of later steps runs on the tensor cores (on by default where the plan
     * has {@link TensorCoreKernels}), for the GPU benchmark's comparison with the f32 tiled way on
     * the same plan; it travels in the meta as {@link #tiledFrom} does.
     */
    synchronized void tensorCores(boolean on) {
        this.tensorCoreBlocks = on && tensorCoreKernels ? TENSOR_CORE_BLOCKS : 0;
    }

    /**
     * Tensor-core blocks from which later tiled steps take the tensor cores ({@link
     * #TENSOR_CORE_BLOCKS} by default, again after {@link #tensorCores}), so that checks can send
     * small steps through them.
     */
    synchronized void tensorCoreBlocks(int blocks) {
        if (blocks < 1) {
            throw new IllegalArgumentException("tensor-core blocks must be at least 1, got " + blocks);
        }
        this.tensorCoreBlocks = tensorCoreKernels ? blocks : 0;
    }

    /** Whether this plan was built with the tensor-core kernels. */
    boolean hasTensorCoreKernels() {
        return tensorCoreKernels;
    }

    /**
     * Host-side split of the last step in nanoseconds: {writing the step's inputs, running the
     * plan's graphs (kernels included), bringing the outputs back and copying them out}.
     */
    synchronized long[] lastTimes() {
        return lastTimes.clone();
    }

    /** Bytes this backend placed on the device: weights, KV arenas and step buffers. */
    public long deviceBytes() {
        return deviceBytes;
    }

    @Override
    public synchronized void close() {
        try (weights) {
            plan.freeDeviceMemory();
            plan.close();
        } catch (Exception e) {
            throw new IllegalStateException("closing the TornadoVM backend", e);
        }
    }
}
