package qwen.service.backend;

import java.util.List;
import qwen.service.kv.KvPool;
import qwen.service.model.ShardWeights;

/**
 * Runs a shard's layer range for a batch of sequence chunks. One implementation per device kind
 * (the CPU with the Vector API; the GPU through TornadoVM), chosen by configuration. Calls are
 * not concurrent: the engine runs one step at a time.
 */
public interface ComputeBackend extends AutoCloseable {

    /**
     * Appends each chunk's keys and values to its cache and returns, in order, one output per
     * chunk: hidden rows for the next shard, or logits where the head is held and asked for.
     */
    List<ChunkOutput> forward(List<SequenceChunk> chunks);

    /** The weights this backend computes with. */
    ShardWeights weights();

    /**
     * The pool that accounts for (and, on the CPU, holds) the KV cache of every sequence, within
     * {@code budgetBytes}. Backends with device-resident caches return an accounting-only pool.
     */
    default KvPool newKvPool(long budgetBytes) {
        return new KvPool(weights().config().projDim(), budgetBytes);
    }

    /** A short description of the device, e.g. "cpu: 2 threads, Vector API 256-bit". */
    String device();

    @Override
    void close();
}
