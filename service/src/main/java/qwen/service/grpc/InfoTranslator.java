package qwen.service.grpc;

import qwen.proto.shard.v1.Backend;
import qwen.proto.shard.v1.ShardInfo;
import qwen.proto.shard.v1.WeightDtype;
import qwen.service.config.ShardSettings;
import qwen.service.engine.ShardEngine;
import qwen.service.kv.KvPool;
import qwen.service.model.DType;
import qwen.service.model.LayerRange;
import qwen.service.model.QwenConfig;
import qwen.service.model.ShardWeights;

/** Describes the open engine as a ShardInfo. Reads only values that need no wait for the model thread. */
final class InfoTranslator {

    private InfoTranslator() {
    }

    static ShardInfo info(ShardEngine engine, ShardSettings settings, int sequencesHeld) {
        ShardWeights weights = engine.backend().weights();
        QwenConfig cfg = weights.config();
        LayerRange range = weights.range();
        KvPool pool = engine.kvPool();
        return ShardInfo.newBuilder()
                .setModelId(settings.modelId())
                .setNumLayers(cfg.numLayers())
                .setFirstLayer(range.first())
                .setEndLayer(range.end())
                .setLayerRange(range.first() + "-" + (range.end() - 1))
                .setHasEmbedding(range.embedding())
                .setHasHead(range.head())
                .setHiddenSize(cfg.hiddenSize())
                .setVocabSize(cfg.vocabSize())
                .setSeqLength(cfg.seqLength())
                .setWeightDtype(dtype(weights))
                .setBackend(Backend.BACKEND_CPU)
                .setDevice(engine.backend().device())
                .setKvBudgetBytes(pool.budgetBytes())
                .setKvBytesInUse(pool.bytesInUse())
                .setKvCapacityTokens((int) Math.min(Integer.MAX_VALUE, pool.capacityTokens(range.size())))
                .setKvBytesPerToken(kvBytesPerToken(cfg, range))
                .setKvPageTokens(KvPool.PAGE_TOKENS)
                .setMaxStepTokens(settings.maxStepTokens())
                .setSequencesHeld(sequencesHeld)
                .setRandomWeights(settings.randomWeights())
                .build();
    }

    /** Keys and values (2) of every held layer, one F32 row of heads x head_dim each. */
    static long kvBytesPerToken(QwenConfig cfg, LayerRange range) {
        return (long) range.size() * 2 * cfg.projDim() * Float.BYTES;
    }

    private static WeightDtype dtype(ShardWeights weights) {
        DType type = weights.layers().isEmpty() ? weights.lmHead().dtype() : weights.layers().getFirst().cAttn().dtype();
        return switch (type) {
            case F32 -> WeightDtype.WEIGHT_DTYPE_F32;
            case F16 -> WeightDtype.WEIGHT_DTYPE_F16;
            case BF16 -> WeightDtype.WEIGHT_DTYPE_BF16;
            case Q8_0, Q8_0_R16 -> WeightDtype.WEIGHT_DTYPE_GGUF_Q8_0;     // R16: the same blocks, re-laid on load
            case Q4_0, Q4_0_R16 -> WeightDtype.WEIGHT_DTYPE_GGUF_Q4_0;
            case Q5_0 -> WeightDtype.WEIGHT_DTYPE_GGUF_Q5_0;
            case Q4_1 -> WeightDtype.WEIGHT_DTYPE_GGUF_Q4_1;
            case Q5_1 -> WeightDtype.WEIGHT_DTYPE_GGUF_Q5_1;
            case Q4_K -> WeightDtype.WEIGHT_DTYPE_GGUF_Q4_K;
            case Q5_K -> WeightDtype.WEIGHT_DTYPE_GGUF_Q5_K;
            case Q6_K -> WeightDtype.WEIGHT_DTYPE_GGUF_Q6_K;
            case Q4_G128 -> WeightDtype.WEIGHT_DTYPE_GPTQ_INT4;           // GPTQ Int4 with groups of 128
        };
    }
}
