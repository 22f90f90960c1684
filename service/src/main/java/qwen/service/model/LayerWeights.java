package qwen.service.model;

/**
 * One transformer block, named as in the checkpoint ({@code transformer.h.N.*}).
 * d = hidden size, f = MLP width (intermediate_size / 2).
 *
 * @param index block index N in the whole model
 * @param ln1 ln_1.weight [d]: RMSNorm before attention
 * @param cAttn attn.c_attn.weight [3d, d]: fused Q, K, V (rows 0..d-1 = Q, d..2d-1 = K, 2d..3d-1 = V)
 * @param cAttnBias attn.c_attn.bias [3d]: the only bias in the model
 * @param attnCProj attn.c_proj.weight [d, d]: attention output projection
 * @param ln2 ln_2.weight [d]: RMSNorm before the MLP
 * @param w1 mlp.w1.weight [f, d]: the linear ("up") branch
 * @param w2 mlp.w2.weight [f, d]: the gated branch; SiLU applies to w2's output (unlike Llama's naming)
 * @param mlpCProj mlp.c_proj.weight [d, f]: MLP down projection
 */
public record LayerWeights(
        int index,
        float[] ln1,
        Matrix cAttn,
        float[] cAttnBias,
        Matrix attnCProj,
        float[] ln2,
        Matrix w1,
        Matrix w2,
        Matrix mlpCProj) {

    /** Bytes of matrix weights read by one token through this block. */
    public long matrixBytes() {
        return cAttn.byteSize() + attnCProj.byteSize() + w1.byteSize() + w2.byteSize() + mlpCProj.byteSize();
    }
}
