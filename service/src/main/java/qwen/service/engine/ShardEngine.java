package qwen.service.engine;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.IntStream;
import qwen.service.backend.BackendProvider;
import qwen.service.backend.ChunkOutput;
import qwen.service.backend.DeviceOptions;
import qwen.service.backend.ComputeBackend;
import qwen.service.backend.SequenceChunk;
import qwen.service.backend.cpu.CpuBackend;
import qwen.service.backend.cpu.Kernels;
import qwen.service.backend.cpu.ScalarKernels;
import qwen.service.backend.cpu.VectorKernels;
import qwen.service.model.Checkpoints;
import qwen.service.model.Quantizer;
import qwen.service.model.RowGroups;
import qwen.service.model.ShardWeights;
import qwen.service.kv.KvPool;
import qwen.service.kv.SequenceKv;
import qwen.service.model.LayerRange;
import qwen.service.model.QwenConfig;
import qwen.service.sampling.Sample;
import qwen.service.sampling.Sampler;
import qwen.service.sampling.SeenTokens;

/**
 * A shard's model state: its compute backend, the KV cache of every live sequence, and (on the
 * last shard) each sequence's sampler and seen ids. Steps run one at a time; each entry of a step
 * succeeds or fails on its own, and a failed entry changes no state.
 */
public final class ShardEngine implements AutoCloseable {

    private final ComputeBackend backend;
    private final KvPool pool;
    private final QwenConfig cfg;
    private final LayerRange range;
    private final Map<String, SequenceState> sequences = new HashMap<>();

    /** Where to find the TornadoVM backend when the build lacks it. */
    public static final String TORNADO_HOW_TO = "build with TORNADOVM_HOME set to a TornadoVM SDK and start the JVM "
            + "with the SDK's flags (@$TORNADOVM_HOME/tornado-argfile); see service/README.md";

    /** {@link #open(EngineOptions, DeviceOptions)} with the default device and 512-token steps. */
    public static ShardEngine open(EngineOptions options) {
        return open(options, new DeviceOptions(null, 512), null);
    }

    /** {@link #open(EngineOptions, DeviceOptions, qwen.service.model.DType)} without quantize-on-load. */
    public static ShardEngine open(EngineOptions options, DeviceOptions device) {
        return open(options, device, null);
    }

    /** The default device, with every matrix re-encoded to {@code quantizeTo} (Q8_0 or Q4_0) on load. */
    public static ShardEngine open(EngineOptions options, qwen.service.model.DType quantizeTo) {
        return open(options, new DeviceOptions(null, 512), quantizeTo);
    }

    /**
     * Loads the options' layer range (any format {@link Checkpoints} reads), re-encodes it to
     * {@code quantizeTo} when not null ({@link Quantizer}), and starts its backend: the CPU kernels
     * (the vector ones with their Q4_0 and Q8_0 matrices re-laid in row groups, {@link RowGroups}), or
     * TornadoVM on the device {@code device} names. Fails with a
     * {@link qwen.service.model.CheckpointException} naming the file and tensor on a bad checkpoint,
     * and with an {@link IllegalStateException} saying why when the device backend cannot start;
     * there is no silent fallback to the CPU.
     */
    public static ShardEngine open(EngineOptions options, DeviceOptions device, qwen.service.model.DType quantizeTo) {
        QwenConfig cfg = Checkpoints.config(options.modelDir());
        ShardWeights weights = Checkpoints.load(options.modelDir(), options.range(cfg.numLayers()));
        if (quantizeTo != null) {
            weights = Quantizer.quantize(weights, quantizeTo);
        }
        if (options.kernels() == EngineOptions.KernelSet.TORNADO) {
            ComputeBackend backend;
            try {
                backend = BackendProvider.named("tornado", TORNADO_HOW_TO).open(weights, device, options.kvBudgetBytes());
            } catch (RuntimeException | LinkageError e) {
                closeQuietly(weights, e);
                throw e;
            }
            return new ShardEngine(backend, backend.newKvPool(options.kvBudgetBytes()));
        }
        if (options.kernels() == EngineOptions.KernelSet.VECTOR) {
            weights = RowGroups.apply(weights);
        }
        Kernels kernels = options.kernels() == EngineOptions.KernelSet.SCALAR
                ? new ScalarKernels()
                : new VectorKernels(options.threads());
        String description = options.kernels() == EngineOptions.KernelSet.SCALAR
                ? "cpu: scalar reference kernels, 1 thread"
                : "cpu: Vector API " + jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.vectorBitSize()
                        + "-bit, " + options.threads() + " threads";
        return new ShardEngine(new CpuBackend(weights, kernels, description), new KvPool(cfg.projDim(), options.kvBudgetBytes()));
    }

    private static void closeQuietly(ShardWeights weights, Throwable cause) {
        try {
            weights.close();
        } catch (Exception e) {
            cause.addSuppressed(e);
        }
    }

    public ShardEngine(ComputeBackend backend, KvPool pool) {
        this.backend = backend;
        this.pool = pool;
        this.cfg = backend.weights().config();
        this.range = backend.weights().range();
    }

    /** The per-sequence state a shard keeps between steps. */
    private static final class SequenceState {
        final SequenceKv kv;
        SeenTokens seen;
        Sampler sampler;

        SequenceState(SequenceKv kv) {
            this.kv = kv;
        }
    }

    /** Runs one step; outputs are in the order of the inputs. */
    public synchronized List<StepOutput> step(List<StepInput> inputs) {
        StepOutput[] outputs = new StepOutput[inputs.size()];
        Map<Integer, SequenceChunk> runnable = new LinkedHashMap<>();
        long freePages = pool.freePages();
        Set<String> named = new HashSet<>();
        for (int i = 0; i < inputs.size(); i++) {
            StepInput in = inputs.get(i);
            SequenceState state = sequences.get(in.sequenceId());
            int held = state == null ? 0 : state.kv.length();
            StepOutput refused = named.add(in.sequenceId()) ? validate(in, held)
                    : StepOutput.failed(in.sequenceId(), StepOutput.Code.INVALID_ARGUMENT, "sequence " + in.sequenceId()
                            + " appears twice in the step; each sequence may appear once per step", held);
            if (refused == null) {
                long pages = KvPool.pagesFor(in.startPos() + in.tokenIds().length, range.size())
                        - KvPool.pagesFor(Math.min(held, in.startPos()), range.size());
                if (pages > freePages) {
                    refused = StepOutput.failed(in.sequenceId(), StepOutput.Code.RESOURCE_EXHAUSTED,
                            "KV budget full: " + pool.bytesInUse() + " of " + pool.budgetBytes()
                                    + " bytes in use; release sequences or retry later", held);
                } else {
                    freePages -= pages;
                }
            }
            if (refused != null) {
                outputs[i] = refused;
                continue;
            }
            if (state == null) {
                state = new SequenceState(pool.newSequence(range.size()));
                sequences.put(in.sequenceId(), state);
            }
            if (in.startPos() < held) {
                state.kv.truncate(in.startPos());                    // recompute from startPos
            }
            if (in.startPos() == 0 && range.head()) {
                state.seen = new SeenTokens(cfg.vocabSize());        // a fresh prefill: a fresh history
                state.sampler = null;
            }
            int prefill = in.prefillLength() > 0 ? in.prefillLength() : in.tokenIds().length;
            runnable.put(i, new SequenceChunk(state.kv, in.startPos(), in.tokenIds(), in.hidden(), prefill,
                    in.sample() && range.head()));
        }
        List<ChunkOutput> computed = runnable.isEmpty() ? List.of() : backend.forward(new ArrayList<>(runnable.values()));
        int[] at = runnable.keySet().stream().mapToInt(Integer::intValue).toArray();
        // Each entry samples over the whole vocabulary (0.5 to 4 ms); the entries are distinct
        // sequences with their own sampler and seen ids, so a batch samples on every core rather
        // than one after another (a single entry runs on this thread).
        IntStream.range(0, at.length).parallel()
                .forEach(c -> outputs[at[c]] = finish(inputs.get(at[c]), computed.get(c)));
        return List.of(outputs);
    }

    private StepOutput finish(StepInput in, ChunkOutput out) {
        if (!range.head()) {
            return new StepOutput(in.sequenceId(), null, out.hidden(), null);
        }
        SequenceState state = sequences.get(in.sequenceId());
        if (state.seen == null) {
            state.seen = new SeenTokens(cfg.vocabSize());
        }
        state.seen.addAll(in.tokenIds());
        if (out.logits() == null) {
            return new StepOutput(in.sequenceId(), null, null, null);
        }
        if (state.sampler == null || !state.sampler.params().equals(in.sampling())) {
            state.sampler = new Sampler(in.sampling());
        }
        Sample sample = state.sampler.next(out.logits(), state.seen);
        return new StepOutput(in.sequenceId(), null, null, sample);
    }

    /** Checks an entry against the model and the held KV; null when it may run. */
    private StepOutput validate(StepInput in, int held) {
        String id = in.sequenceId();
        int n = in.tokenIds().length;
        if (n == 0) {
            return StepOutput.failed(id, StepOutput.Code.INVALID_ARGUMENT, "sequence " + id + ": no tokens in the step", held);
        }
        if (in.startPos() > held) {
            return StepOutput.failed(id, StepOutput.Code.FAILED_PRECONDITION, "sequence " + id + " starts at position "
                    + in.startPos() + " but this shard holds " + held + " positions of it; re-prefill from 0", held);
        }
        for (int t : in.tokenIds()) {
            if (t < 0 || t >= cfg.vocabSize()) {
                return StepOutput.failed(id, StepOutput.Code.INVALID_ARGUMENT, "sequence " + id + ": token id " + t
                        + " is outside the vocabulary [0, " + cfg.vocabSize() + ")", held);
            }
        }
        if (!range.embedding() && (in.hidden() == null || in.hidden().length != n * cfg.hiddenSize())) {
            return StepOutput.failed(id, StepOutput.Code.INVALID_ARGUMENT, "sequence " + id + ": expected " + n + " hidden rows of "
                    + cfg.hiddenSize() + " floats from the previous shard, got "
                    + (in.hidden() == null ? "none" : in.hidden().length + " floats"), held);
        }
        if (range.head() && in.sample() && in.sampling() == null) {
            return StepOutput.failed(id, StepOutput.Code.INVALID_ARGUMENT, "sequence " + id + ": sampling parameters missing", held);
        }
        return null;
    }

    /** Frees the KV of the given sequences; returns how many were held. */
    public synchronized int release(List<String> sequenceIds) {
        int freed = 0;
        for (String id : sequenceIds) {
            SequenceState state = sequences.remove(id);
            if (state != null) {
                state.kv.close();
                freed++;
            }
        }
        return freed;
    }

    /** Frees the KV of every sequence whose id starts with {@code prefix} (not empty); returns how many. */
    public synchronized int releasePrefix(String prefix) {
        if (prefix.isEmpty()) {
            throw new IllegalArgumentException("the sequence id prefix is empty");
        }
        return release(sequences.keySet().stream().filter(id -> id.startsWith(prefix)).toList());
    }

    /** Positions held for a sequence; 0 when unknown. */
    public synchronized int heldPositions(String sequenceId) {
        SequenceState state = sequences.get(sequenceId);
        return state == null ? 0 : state.kv.length();
    }

    /** Number of sequences with KV on this shard. */
    public synchronized int liveSequences() {
        return sequences.size();
    }

    public KvPool kvPool() {
        return pool;
    }

    public ComputeBackend backend() {
        return backend;
    }

    @Override
    public synchronized void close() {
        release(new ArrayList<>(sequences.keySet()));
        backend.close();
    }
}
