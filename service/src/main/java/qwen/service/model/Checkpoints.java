package qwen.service.model;

import java.nio.file.Path;
import qwen.service.model.gguf.GgufLoader;

/**
 * The one entry point for loading a model, whatever its format: a Hugging Face directory
 * (safetensors, {@link CheckpointLoader}) or a single GGUF file ({@link GgufLoader}). Both give
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
        return GgufLoader.isGguf(model) ? GgufLoader.load(model, range) : CheckpointLoader.load(model, range);
    }
}
