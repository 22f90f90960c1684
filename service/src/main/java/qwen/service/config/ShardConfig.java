package qwen.service.config;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.nio.file.Path;
import java.util.Optional;
import java.util.OptionalInt;
import qwen.service.engine.EngineOptions;

/**
 * The shard's settings, all under {@code qwen.shard.*} (system properties, environment variables
 * such as {@code QWEN_SHARD_MODEL_DIR}, or application.properties). {@link ShardSettings#resolve}
 * checks them and fails start-up with a message naming the key at fault.
 */
@ConfigMapping(prefix = "qwen.shard")
public interface ShardConfig {

    /** {@code model-dir}: Hugging Face Qwen-1 directory (config.json, safetensors). Wins over demo-model. */
    Optional<Path> modelDir();

    /**
     * {@code demo-model}: when model-dir is absent, generate a random-weight checkpoint of this size
     * (its output is noise) instead of failing.
     */
    @WithDefault("NONE")
    DemoModel demoModel();

    /** {@code demo-dir}: where the demo checkpoint is written; default java.io.tmpdir/qwen-demo-&lt;size&gt;. */
    Optional<Path> demoDir();

    /** {@code layers}: inclusive block range "i-j" this shard runs; default the whole model. */
    Optional<String> layers();

    /** {@code threads}: worker threads of the vector kernels; default the available processors. */
    OptionalInt threads();

    /**
     * {@code kernels}: VECTOR (the CPU fast path), SCALAR (the CPU reference, for debugging) or
     * TORNADO (the GPU through TornadoVM; needs a build with TORNADOVM_HOME and the SDK's JVM flags).
     */
    @WithDefault("VECTOR")
    EngineOptions.KernelSet kernels();

    /** {@code kv-budget-mb}: MiB of KV cache this shard may hold over all sequences. */
    @WithDefault("1024")
    long kvBudgetMb();

    /**
     * {@code device}: with kernels=TORNADO, the TornadoVM device as "driver:device" (e.g. 0:0; `tornado
     * --devices` lists them); default TornadoVM's default device.
     */
    Optional<String> device();

    /**
     * {@code cuda-graphs}: with kernels=TORNADO on a PTX (NVIDIA) device, record the step's kernel
     * launches once as CUDA graphs and replay them, which removes most per-launch host cost;
     * ignored on other devices.
     */
    @WithDefault("true")
    boolean cudaGraphs();

    /**
     * {@code tensor-cores}: with kernels=TORNADO on a PTX (NVIDIA) device, run the matrix products
     * of prefill and of large batches on the tensor cores (about 2x prefill and 1.4x at 64
     * sequences on an H100); false leaves their tasks out of the plan, 121 launches fewer a step
     * (about 0.4 ms of a 4.1 ms batch-1 step there). Ignored on other devices.
     */
    @WithDefault("true")
    boolean tensorCores();

    /** {@code max-step-tokens}: most tokens one StepRequest may carry, summed over its sequences. */
    @WithDefault("512")
    int maxStepTokens();

    /** {@code model-id}: ShardInfo.model_id; default the model directory's name, or qwen-demo-&lt;size&gt;. */
    Optional<String> modelId();
}
