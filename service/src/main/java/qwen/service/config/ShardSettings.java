package qwen.service.config;

import java.nio.file.Path;
import java.util.regex.Pattern;
import qwen.service.backend.DeviceOptions;
import qwen.service.engine.EngineOptions;
import qwen.service.model.RandomCheckpoint;

/**
 * The checked, defaulted form of {@link ShardConfig}: everything start-up needs, with no optional
 * left to interpret.
 *
 * @param modelDir the checkpoint directory: qwen.shard.model-dir, or the demo directory
 * @param demo the random checkpoint to make in modelDir first; null when a real model was given
 * @param modelId ShardInfo.model_id
 * @param engine how to open the engine (modelDir, layers, kernels, threads, KV budget)
 * @param maxStepTokens most tokens one StepRequest may carry
 * @param device the accelerator settings (used with kernels=TORNADO)
 */
public record ShardSettings(Path modelDir, RandomCheckpoint demo, String modelId, EngineOptions engine, int maxStepTokens,
        DeviceOptions device) {

    private static final Pattern DEVICE = Pattern.compile("\\d{1,3}:\\d{1,3}");

    private static final Pattern LAYERS = Pattern.compile("\\d{1,4}-\\d{1,4}");
    private static final long MAX_KV_BUDGET_MB = 1L << 24;

    /** Whether the weights are random (the demo checkpoint). */
    public boolean randomWeights() {
        return demo != null;
    }

    /**
     * Checks ranges and applies defaults; throws {@link IllegalArgumentException} naming the
     * offending {@code qwen.shard.*} key. The layer range is checked against the model later, once
     * its config.json can be read.
     */
    public static ShardSettings resolve(ShardConfig config) {
        if (config.modelDir().isEmpty() && config.demoModel() == DemoModel.NONE) {
            throw new IllegalArgumentException("no model: set qwen.shard.model-dir to a Qwen-1 checkpoint directory, "
                    + "or qwen.shard.demo-model=TINY (or SMALL) for a random-weight demo model");
        }
        String layers = config.layers().map(String::strip).orElse(null);
        if (layers != null && !LAYERS.matcher(layers).matches()) {
            throw new IllegalArgumentException("qwen.shard.layers='" + layers
                    + "' must be an inclusive block range like 0-23 (or unset for the whole model)");
        }
        int threads = config.threads().orElse(Runtime.getRuntime().availableProcessors());
        if (threads < 1 || threads > 4096) {
            throw new IllegalArgumentException("qwen.shard.threads=" + threads + " must be in 1..4096");
        }
        if (config.kvBudgetMb() < 1 || config.kvBudgetMb() > MAX_KV_BUDGET_MB) {
            throw new IllegalArgumentException("qwen.shard.kv-budget-mb=" + config.kvBudgetMb() + " must be in 1.." + MAX_KV_BUDGET_MB);
        }
        if (config.maxStepTokens() < 1 || config.maxStepTokens() > 1 << 20) {
            throw new IllegalArgumentException("qwen.shard.max-step-tokens=" + config.maxStepTokens() + " must be in 1.." + (1 << 20));
        }
        if (config.modelId().isPresent() && config.modelId().get().isBlank()) {
            throw new IllegalArgumentException("qwen.shard.model-id is set but empty; unset it to use the directory name");
        }
        String device = config.device().map(String::strip).orElse(null);
        if (device != null && !DEVICE.matcher(device).matches()) {
            throw new IllegalArgumentException("qwen.shard.device='" + device
                    + "' must be a TornadoVM device as driver:device, like 0:0 (`tornado --devices` lists them)");
        }
        RandomCheckpoint demo = config.modelDir().isPresent() ? null : config.demoModel().checkpoint();
        Path dir = config.modelDir().orElseGet(() -> config.demoDir().orElseGet(() ->
                Path.of(System.getProperty("java.io.tmpdir"), config.demoModel().modelId())));
        dir = dir.toAbsolutePath().normalize();
        String modelId = config.modelId().orElse(demo != null ? config.demoModel().modelId() : directoryName(dir));
        EngineOptions engine = new EngineOptions(dir, layers, config.kernels(), threads, config.kvBudgetMb() << 20);
        return new ShardSettings(dir, demo, modelId, engine, config.maxStepTokens(),
                new DeviceOptions(device, config.maxStepTokens(), config.cudaGraphs(), config.tensorCores()));
    }

    private static String directoryName(Path dir) {
        return dir.getFileName() == null ? dir.toString() : dir.getFileName().toString();
    }
}
