package qwen.service.model;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * The Qwen-1 checkpoint's tensor names and shapes (SPEC 2.2), in one table shared by the loader
 * and the random checkpoint writer. d = hidden size, f = MLP width (intermediate_size / 2), PyTorch
 * Linear layout [out, in].
 *
 * <pre>
 * transformer.wte.weight               [vocab, d]   token embedding
 * transformer.h.N.ln_1.weight          [d]          RMSNorm before attention
 * transformer.h.N.attn.c_attn.weight   [3d, d]      fused Q, K, V
 * transformer.h.N.attn.c_attn.bias     [3d]         the model's only bias
 * transformer.h.N.attn.c_proj.weight   [d, d]       attention output projection
 * transformer.h.N.ln_2.weight          [d]          RMSNorm before the MLP
 * transformer.h.N.mlp.w1.weight        [f, d]       linear ("up") branch
 * transformer.h.N.mlp.w2.weight        [f, d]       SiLU-gated branch
 * transformer.h.N.mlp.c_proj.weight    [d, f]       MLP down projection
 * transformer.ln_f.weight              [d]          final RMSNorm
 * lm_head.weight                       [vocab, d]   output head, untied
 * </pre>
 */
public final class CheckpointLayout {

    public static final String WTE = "transformer.wte.weight";
    public static final String LN_F = "transformer.ln_f.weight";
    public static final String LM_HEAD = "lm_head.weight";

    /** Per-block tensor suffixes, in the order the HF checkpoint lists them. */
    public static final String LN_1 = "ln_1.weight";
    public static final String C_ATTN = "attn.c_attn.weight";
    public static final String C_ATTN_BIAS = "attn.c_attn.bias";
    public static final String ATTN_C_PROJ = "attn.c_proj.weight";
    public static final String LN_2 = "ln_2.weight";
    public static final String W1 = "mlp.w1.weight";
    public static final String W2 = "mlp.w2.weight";
    public static final String MLP_C_PROJ = "mlp.c_proj.weight";

    /** Buffers some exports carry that HF's QWenLMHeadModel ignores on load (SPEC 2.1). */
    private static final Pattern IGNORED = Pattern.compile("transformer\\.h\\.\\d+\\.attn\\.(rotary_emb\\.inv_freq|masked_bias)");

    private CheckpointLayout() {
    }

    /** Full name of a block tensor, e.g. block(3, W1) = "transformer.h.3.mlp.w1.weight". */
    public static String block(int layer, String suffix) {
        return "transformer.h." + layer + "." + suffix;
    }

    /** Whether a checkpoint may carry {@code name} without the model using it. */
    public static boolean ignored(String name) {
        return IGNORED.matcher(name).matches();
    }

    /** Every tensor of the whole model with its shape, in checkpoint order (wte, blocks, ln_f, lm_head). */
    public static Map<String, long[]> shapes(QwenConfig c) {
        return shapes(c, LayerRange.whole(c.numLayers()));
    }

    /** The tensors {@code range} needs with their shapes, in checkpoint order. */
    public static Map<String, long[]> shapes(QwenConfig c, LayerRange range) {
        long d = c.hiddenSize();
        long f = c.ffnDim();
        long qkv = c.qkvDim();
        long proj = c.projDim();
        Map<String, long[]> shapes = new LinkedHashMap<>();
        if (range.embedding()) {
            shapes.put(WTE, new long[] {c.vocabSize(), d});
        }
        for (int n = range.first(); n < range.end(); n++) {
            shapes.put(block(n, LN_1), new long[] {d});
            shapes.put(block(n, C_ATTN), new long[] {qkv, d});
            shapes.put(block(n, C_ATTN_BIAS), new long[] {qkv});
            shapes.put(block(n, ATTN_C_PROJ), new long[] {d, proj});
            shapes.put(block(n, LN_2), new long[] {d});
            shapes.put(block(n, W1), new long[] {f, d});
            shapes.put(block(n, W2), new long[] {f, d});
            shapes.put(block(n, MLP_C_PROJ), new long[] {d, f});
        }
        if (range.head()) {
            shapes.put(LN_F, new long[] {d});
            shapes.put(LM_HEAD, new long[] {c.vocabSize(), d});
        }
        return shapes;
    }
}
