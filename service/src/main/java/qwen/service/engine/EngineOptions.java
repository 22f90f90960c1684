package qwen.service.engine;

import java.nio.file.Path;
import qwen.service.model.LayerRange;

/**
 * How to open a shard engine.
 *
 * @param modelDir Hugging Face model directory (config.json, safetensors)
 * @param layers block range in "i-j" form (inclusive), or null for the whole model
 * @param kernels which CPU kernel set computes
 * @param threads worker threads for the vector kernels (the machine's cores by default)
 * @param kvBudgetBytes bytes of KV cache the shard may hold
 */
public record EngineOptions(Path modelDir, String layers, KernelSet kernels, int threads, long kvBudgetBytes) {

    /** CPU kernel implementations. */
    public enum KernelSet {
        /** Vector API on all threads: the production path. */
        VECTOR,
        /** Plain loops: the reference the fast path is tested against. */
        SCALAR,
        /**
         * The GPU (or any OpenCL/PTX device) through TornadoVM: present only in builds made with
         * TORNADOVM_HOME set, and run with the SDK's JVM flags.
         */
        TORNADO
    }

    /** Whole model, vector kernels on every core, the given KV budget. */
    public static EngineOptions wholeModel(Path modelDir, long kvBudgetBytes) {
        return new EngineOptions(modelDir, null, KernelSet.VECTOR, Runtime.getRuntime().availableProcessors(), kvBudgetBytes);
    }

    /** Resolves the layer text against the model's block count. */
    public LayerRange range(int numLayers) {
        return layers == null ? LayerRange.whole(numLayers) : LayerRange.parse(layers, numLayers);
    }
}
