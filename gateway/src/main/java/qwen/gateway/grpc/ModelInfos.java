package qwen.gateway.grpc;

import java.util.List;
import java.util.Locale;
import qwen.gateway.chat.GenerationDefaults;
import qwen.gateway.shard.ModelCard;
import qwen.gateway.shard.ReplicaShards;
import qwen.proto.chat.v1.Backend;
import qwen.proto.chat.v1.GenerationParams;
import qwen.proto.chat.v1.ModelInfo;
import qwen.proto.chat.v1.PipelineSummary;
import qwen.proto.chat.v1.ShardSummary;

/** Writes GetModelInfo's answer from what the shards reported and the generation defaults. */
final class ModelInfos {

    private ModelInfos() {
    }

    /**
     * @param card the model (its fields, not its shards)
     * @param replicas every pipeline replica with its live shards, replica 0 first
     */
    static ModelInfo modelInfo(ModelCard card, List<ReplicaShards> replicas, GenerationDefaults defaults,
                               int maxSequenceTokens, int tokenizerVocabSize) {
        ModelInfo.Builder info = ModelInfo.newBuilder()
                .setModelId(card.modelId())
                .setRandomWeights(card.randomWeights())
                .setNumLayers(card.numLayers())
                .setHiddenSize(card.hiddenSize())
                .setSeqLength(card.seqLength())
                .setMaxSequenceTokens(maxSequenceTokens)
                .setMaxWindowSize(defaults.maxWindowSize())
                .setVocabSize(card.vocabSize())
                .setTokenizerVocabSize(tokenizerVocabSize)
                .setDefaultParams(defaultParams(defaults));
        for (ReplicaShards replica : replicas) {
            int index = replica.state().index();
            info.addPipelines(PipelineSummary.newBuilder()
                    .setPipeline(index)
                    .setServing(replica.state().up())
                    .setProblem(replica.state().problem())
                    .setShardCount(replica.shards().size()));
            for (ModelCard.ShardDescription shard : replica.shards()) {
                info.addShards(shard(index, shard));
            }
        }
        return info.build();
    }

    private static ShardSummary shard(int pipeline, ModelCard.ShardDescription shard) {
        return ShardSummary.newBuilder()
                .setPipeline(pipeline)
                .setFirstLayer(shard.firstLayer())
                .setEndLayer(shard.endLayer())
                .setLayerRange(shard.firstLayer() + "-" + (shard.endLayer() - 1))
                .setBackend(backend(shard.backend()))
                .setDevice(shard.device())
                .setWeightDtype(shard.weightDtype().toLowerCase(Locale.ROOT))
                .setKvCapacityTokens((int) Math.min(shard.kvCapacityTokens(), 0xFFFF_FFFFL))
                .setKvBytesInUse(shard.kvBytesInUse())
                .setServing(shard.serving())
                .build();
    }

    /** Every default a request falls back to; seed has none (the server draws one per turn). */
    private static GenerationParams defaultParams(GenerationDefaults defaults) {
        return GenerationParams.newBuilder()
                .setMaxNewTokens(defaults.maxNewTokens())
                .setTemperature((float) defaults.temperature())
                .setTopP((float) defaults.topP())
                .setTopK(defaults.topK())
                .setRepetitionPenalty((float) defaults.repetitionPenalty())
                .setGreedy(!defaults.doSample())
                .build();
    }

    private static Backend backend(String name) {
        return switch (name.toUpperCase(Locale.ROOT)) {
            case "CPU" -> Backend.BACKEND_CPU;
            case "TORNADOVM" -> Backend.BACKEND_TORNADOVM;
            default -> Backend.BACKEND_UNSPECIFIED;
        };
    }
}
