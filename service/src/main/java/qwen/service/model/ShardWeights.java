package qwen.service.model;

import java.util.List;

/**
 * The weights of one shard: its blocks and, where its range includes them, the embedding and the
 * head. Matrices are views into memory-mapped checkpoint files; {@link #close()} unmaps them.
 *
 * <pre>
 * checkpoint name                      role                       shape
 * transformer.wte.weight               wte (embedding)            [vocab, d]
 * transformer.h.N.ln_1.weight          layers[N].ln1              [d]
 * transformer.h.N.attn.c_attn.weight   layers[N].cAttn            [3d, d]
 * transformer.h.N.attn.c_attn.bias     layers[N].cAttnBias        [3d]
 * transformer.h.N.attn.c_proj.weight   layers[N].attnCProj        [d, d]
 * transformer.h.N.ln_2.weight          layers[N].ln2              [d]
 * transformer.h.N.mlp.w1.weight        layers[N].w1               [f, d]
 * transformer.h.N.mlp.w2.weight        layers[N].w2               [f, d]
 * transformer.h.N.mlp.c_proj.weight    layers[N].mlpCProj         [d, f]
 * transformer.ln_f.weight              lnF                        [d]
 * lm_head.weight                       lmHead                     [vocab, d]
 * </pre>
 *
 * @param config model hyper-parameters
 * @param range which blocks, and whether the embedding and head are held
 * @param wte token embedding [vocab, d]; null unless range.embedding()
 * @param layers blocks range.first() .. range.end() - 1, in order
 * @param lnF final RMSNorm weight [d]; null unless range.head()
 * @param lmHead output head [vocab, d], untied from wte; null unless range.head()
 * @param resources what to close when the weights are no longer used (the file mappings)
 */
public record ShardWeights(
        QwenConfig config,
        LayerRange range,
        Matrix wte,
        List<LayerWeights> layers,
        float[] lnF,
        Matrix lmHead,
        AutoCloseable resources) implements AutoCloseable {

    /** Matrix bytes one decoded token reads on this shard (blocks and lm_head; one wte row is negligible). */
    public long bytesPerToken() {
        long total = lmHead == null ? 0 : lmHead.byteSize();
        for (LayerWeights layer : layers) {
            total += layer.matrixBytes();
        }
        return total;
    }

    @Override
    public void close() throws Exception {
        resources.close();
    }
}
