package qwen.service.model;

/**
 * The Qwen-1 hyper-parameters the math uses (SPEC section 1), read from config.json.
 *
 * @param hiddenSize model width d (2048 for 1.8B)
 * @param numLayers transformer blocks (24)
 * @param numHeads attention heads; every head has its own K and V (16)
 * @param headDim per-head width, config kv_channels (128)
 * @param ffnDim MLP inner width: config intermediate_size / 2 (5504)
 * @param vocabSize embedding and lm_head rows, padding rows included (151936)
 * @param seqLength training context; dynamic NTK and logn scaling start past it (8192)
 * @param ropeBase rotary base before NTK scaling (10000)
 * @param rmsEps RMSNorm epsilon (1e-6)
 * @param useDynamicNtk scale the rotary base from the prefill length (SPEC 3.5)
 * @param useLognAttn scale queries by log(pos + 1) / log(seqLength) past seqLength
 */
public record QwenConfig(
        int hiddenSize,
        int numLayers,
        int numHeads,
        int headDim,
        int ffnDim,
        int vocabSize,
        int seqLength,
        double ropeBase,
        float rmsEps,
        boolean useDynamicNtk,
        boolean useLognAttn) {

    /** Width of the fused c_attn output: Q, K and V side by side. */
    public int qkvDim() {
        return 3 * numHeads * headDim;
    }

    /** Width of Q (and of K, and of V): heads * headDim. */
    public int projDim() {
        return numHeads * headDim;
    }
}
