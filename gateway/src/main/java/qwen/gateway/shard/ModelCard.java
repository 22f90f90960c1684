package qwen.gateway.shard;

import java.util.List;

/**
 * What the gateway serves, as learnt from the shards' Info at start-up.
 *
 * @param modelId the model's id (the shards agree on it)
 * @param randomWeights true for a generated demo checkpoint: its answers are noise
 */
public record ModelCard(String modelId, int numLayers, int hiddenSize, int seqLength, int vocabSize,
                        boolean randomWeights, List<ShardDescription> shards) {

    /** One shard of the pipeline. endLayer is exclusive. */
    public record ShardDescription(String address, int firstLayer, int endLayer, String backend, String device,
                                   String weightDtype, long kvCapacityTokens, long kvBytesInUse, boolean serving) {
    }
}
