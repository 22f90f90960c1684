package qwen.service.config;

import qwen.service.model.DType;
import qwen.service.model.RandomCheckpoint;

/**
 * The random-weight demo checkpoints a shard can make for itself when no model is given. They have
 * Qwen's real vocabulary (151936) and context (8192), so the gateway's real tokenizer and chat
 * template work end to end, but their output is noise.
 */
public enum DemoModel {
    /** No demo: qwen.shard.model-dir is required. */
    NONE(null),
    /** d 64, 2 layers, 4 heads, f 128: about 40 MB, loads in well under a second. */
    TINY(new RandomCheckpoint(64, 2, 4, 128, DemoModel.VOCAB, DemoModel.SEQ_LENGTH, DType.BF16, 1, DemoModel.SEED, null)),
    /** d 256, 4 layers, 4 heads, f 512: about 160 MB. */
    SMALL(new RandomCheckpoint(256, 4, 4, 512, DemoModel.VOCAB, DemoModel.SEQ_LENGTH, DType.BF16, 1, DemoModel.SEED, null));

    private static final int VOCAB = 151936;
    private static final int SEQ_LENGTH = 8192;
    /** Fixed, so that every shard process of one demo pipeline writes the same weights. */
    private static final long SEED = 1L;

    private final RandomCheckpoint checkpoint;

    DemoModel(RandomCheckpoint checkpoint) {
        this.checkpoint = checkpoint;
    }

    /** The checkpoint to write; null for NONE. */
    public RandomCheckpoint checkpoint() {
        return checkpoint;
    }

    /** ShardInfo.model_id of this demo: "qwen-demo-tiny", "qwen-demo-small". */
    public String modelId() {
        return "qwen-demo-" + name().toLowerCase(java.util.Locale.ROOT);
    }
}
