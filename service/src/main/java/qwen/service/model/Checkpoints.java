package qwen.service.model;

import java.nio.file.Path;
import qwen.service.model.gguf.GgufLoader;
import qwen.service.model.gptq.GptqLoader;

/**
 * The one entry point for loading a model, whatever its format: a Hugging Face directory
 * (safetensors, {@link CheckpointLoader}), a GPTQ Int4/Int8 directory (with quantize_config.json,
 * {@link GptqLoader}) or a single GGUF file ({@link GgufLoader}). Both give
 * the same {@link ShardWeights}, so nothing past loading sees the format.
 */
public final class Checkpoints {

    private Checkpoints() {
    }

    /** The model's hyper-parameters. */
    public static QwenConfig config(Path model) {
        return GgufLoader.isGguf(model) ? GgufLoader.config(model) : ModelDirectory.open(model).config();
    }

    /** Loads the range's weights; see {@link CheckpointLoader#load} and {@link GgufLoader#load}. */
    public static ShardWeights load(Path model, LayerRange range) {
        if (GgufLoader.isGguf(model)) {
            return GgufLoader.load(model, range);
        }
        return GptqLoader.isGptq(model) ? GptqLoader.load(model, range) : CheckpointLoader.load(model, range);
    }
}
