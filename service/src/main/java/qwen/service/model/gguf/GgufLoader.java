package qwen.service.model.gguf;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import qwen.service.model.CheckpointException;
import qwen.service.model.DType;
import qwen.service.model.LayerRange;
import qwen.service.model.LayerWeights;
import qwen.service.model.Matrix;
import qwen.service.model.QwenConfig;
import qwen.service.model.ShardWeights;

/**
 * Loads a Qwen-1 GGUF file (architecture "qwen", SPEC section 9) into the same
 * {@link ShardWeights} a safetensors checkpoint gives: matrices stay memory-mapped in their
 * stored type (F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_1, Q5_1, Q4_K, Q5_K or Q6_K), norms and the c_attn bias become float[].
 *
 * <pre>
 * GGUF name                 role                GGUF dims (innermost first)
 * token_embd.weight         wte                 [d, vocab]
 * blk.N.attn_norm.weight    layers[N].ln1       [d]
 * blk.N.attn_qkv.weight     layers[N].cAttn     [d, 3d]
 * blk.N.attn_qkv.bias       layers[N].cAttnBias [3d]
 * blk.N.attn_output.weight  layers[N].attnCProj [d, d]
 * blk.N.ffn_norm.weight     layers[N].ln2       [d]
 * blk.N.ffn_up.weight       layers[N].w1        [d, f]   (HF mlp.w1)
 * blk.N.ffn_gate.weight     layers[N].w2        [d, f]   (HF mlp.w2, the SiLU branch)
 * blk.N.ffn_down.weight     layers[N].mlpCProj  [f, d]
 * output_norm.weight        lnF                 [d]
 * output.weight             lmHead              [d, vocab]
 * </pre>
 *
 * qwen.feed_forward_length is HF's intermediate_size, twice the MLP width f. The file carries no
 * dynamic-NTK or logn flags; Qwen-1's config.json turns both on, so they are on here (they only
 * act past context_length, which llama.cpp does not support at all).
 */
public final class GgufLoader {

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private GgufLoader() {
    }

    /** True when path names a GGUF file (by its ".gguf" name) rather than a model directory. */
    public static boolean isGguf(Path path) {
        return path.getFileName() != null && path.getFileName().toString().toLowerCase(java.util.Locale.ROOT).endsWith(".gguf");
    }

    /** The model's hyper-parameters from the file's metadata. */
    public static QwenConfig config(Path file) {
        try (GgufFile f = GgufFile.open(file)) {
            return config(f);
        }
    }

    static QwenConfig config(GgufFile f) {
        Map<String, Object> m = f.metadata();
        Object arch = m.get("general.architecture");
        if (!"qwen".equals(arch)) {
            throw new CheckpointException(f.path() + ": general.architecture is " + (arch == null ? "missing" : "'" + arch + "'")
                    + ", expected 'qwen' (a Qwen-1 GGUF file)");
        }
        int d = integer(f, "qwen.embedding_length", null);
        int layers = integer(f, "qwen.block_count", null);
        int heads = integer(f, "qwen.attention.head_count", null);
        int ff = integer(f, "qwen.feed_forward_length", null);
        int ctx = integer(f, "qwen.context_length", null);
        if (heads <= 0 || d % heads != 0 || ff % 2 != 0 || layers <= 0) {
            throw new CheckpointException(f.path() + ": inconsistent sizes: embedding_length " + d + ", head_count " + heads
                    + ", feed_forward_length " + ff + " (must be even: it is twice the MLP width), block_count " + layers);
        }
        int headDim = integer(f, "qwen.rope.dimension_count", d / heads);
        if (headDim != d / heads) {
            throw new CheckpointException(f.path() + ": qwen.rope.dimension_count " + headDim
                    + " differs from embedding_length / head_count = " + d / heads + " (partial rotary is not Qwen-1)");
        }
        Object eps = m.get("qwen.attention.layer_norm_rms_epsilon");
        if (!(eps instanceof Number)) {
            throw new CheckpointException(f.path() + ": metadata qwen.attention.layer_norm_rms_epsilon is missing or not a number");
        }
        Object base = m.getOrDefault("qwen.rope.freq_base", 10000f);
        GgufTensor embd = f.tensors().get("token_embd.weight");
        if (embd == null || embd.dims().length != 2) {
            throw new CheckpointException(f.path() + ": tensor 'token_embd.weight' [" + d + ", vocab] is missing or not 2-D");
        }
        return new QwenConfig(d, layers, heads, headDim, ff / 2, Math.toIntExact(embd.dims()[1]), ctx,
                ((Number) base).doubleValue(), ((Number) eps).floatValue(), true, true);
    }

    private static int integer(GgufFile f, String key, Integer fallback) {
        Object v = f.metadata().get(key);
        if (v == null && fallback != null) {
            return fallback;
        }
        if (!(v instanceof Long n) || n <= 0 || n > Integer.MAX_VALUE) {
            throw new CheckpointException(f.path() + ": metadata " + key + " is " + (v == null ? "missing" : v)
                    + ", expected a positive integer");
        }
        return n.intValue();
    }

    /**
     * Loads blocks range.first() .. range.end() - 1 (and the embedding and head where the range
     * holds them). A tensor of an unsupported type, a missing or unexpected tensor, or a wrong
     * shape is an error naming the file and the tensor. Close the weights to unmap the file.
     */
    public static ShardWeights load(Path file, LayerRange range) {
        GgufFile f = GgufFile.open(file);
        try {
            QwenConfig cfg = config(f);
            if (range.end() > cfg.numLayers()) {
                throw new CheckpointException(file + ": layer range " + range + " is outside the model's "
                        + cfg.numLayers() + " blocks (0-" + (cfg.numLayers() - 1) + ")");
            }
            Map<String, long[]> expected = layout(cfg);
            for (GgufTensor t : f.tensors().values()) {
                if (!expected.containsKey(t.name()) && !t.name().equals("rope_freqs.weight")) {
                    throw new CheckpointException(file + ": unexpected tensor '" + t.name() + "' is not part of a Qwen-1 model"
                            + " with block_count " + cfg.numLayers());
                }
            }
            Tensors t = new Tensors(f, expected);
            List<LayerWeights> layers = new ArrayList<>();
            for (int n = range.first(); n < range.end(); n++) {
                String p = "blk." + n + ".";
                layers.add(new LayerWeights(n, t.vector(p + "attn_norm.weight"), t.matrix(p + "attn_qkv.weight"),
                        t.vector(p + "attn_qkv.bias"), t.matrix(p + "attn_output.weight"), t.vector(p + "ffn_norm.weight"),
                        t.matrix(p + "ffn_up.weight"), t.matrix(p + "ffn_gate.weight"), t.matrix(p + "ffn_down.weight")));
            }
            Matrix wte = range.embedding() ? t.matrix("token_embd.weight") : null;
            float[] lnF = range.head() ? t.vector("output_norm.weight") : null;
            Matrix lmHead = range.head() ? t.matrix("output.weight") : null;
            return new ShardWeights(cfg, range, wte, List.copyOf(layers), lnF, lmHead, f);
        } catch (RuntimeException e) {
            f.close();
            throw e;
        }
    }

    /** Every tensor of the model with its GGUF dims (innermost first). */
    static Map<String, long[]> layout(QwenConfig c) {
        long d = c.hiddenSize();
        long f = c.ffnDim();
        long v = c.vocabSize();
        Map<String, long[]> m = new LinkedHashMap<>();
        m.put("token_embd.weight", new long[] {d, v});
        for (int n = 0; n < c.numLayers(); n++) {
            String p = "blk." + n + ".";
            m.put(p + "attn_norm.weight", new long[] {d});
            m.put(p + "attn_qkv.weight", new long[] {d, 3 * d});
            m.put(p + "attn_qkv.bias", new long[] {3 * d});
            m.put(p + "attn_output.weight", new long[] {d, d});
            m.put(p + "ffn_norm.weight", new long[] {d});
            m.put(p + "ffn_up.weight", new long[] {d, f});
            m.put(p + "ffn_gate.weight", new long[] {d, f});
            m.put(p + "ffn_down.weight", new long[] {f, d});
        }
        m.put("output_norm.weight", new long[] {d});
        m.put("output.weight", new long[] {d, v});
        return m;
    }

    private record Tensors(GgufFile f, Map<String, long[]> expected) {

        GgufTensor find(String name) {
            GgufTensor t = f.tensors().get(name);
            long[] shape = expected.get(name);
            if (t == null) {
                throw new CheckpointException(f.path() + ": tensor '" + name + "' " + Arrays.toString(shape) + " is missing");
            }
            if (!Arrays.equals(t.dims(), shape)) {
                throw new CheckpointException(f.path() + ": tensor '" + name + "' has dims " + t.shapeText()
                        + ", expected " + Arrays.toString(shape) + " (innermost first) from the metadata");
            }
            if (t.type().dtype() == null) {
                throw new CheckpointException(f.path() + ": tensor '" + name + "' has type " + t.type()
                        + ", which this server does not load (supported: F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_1, Q5_1, Q4_K, Q5_K, Q6_K)");
            }
            return t;
        }

        Matrix matrix(String name) {
            GgufTensor t = find(name);
            return new Matrix(name, t.type().dtype(), Math.toIntExact(t.dims()[1]), Math.toIntExact(t.dims()[0]), t.data());
        }

        float[] vector(String name) {
            GgufTensor t = find(name);
            MemorySegment s = t.data();
            float[] out = new float[Math.toIntExact(t.dims()[0])];
            for (int i = 0; i < out.length; i++) {
                out[i] = switch (t.type().dtype()) {
                    case F32 -> s.getAtIndex(F32, i);
                    case F16 -> Float.float16ToFloat(s.getAtIndex(U16, i));
                    case BF16 -> Float.intBitsToFloat((s.getAtIndex(U16, i) & 0xFFFF) << 16);
                    case Q8_0, Q4_0, Q5_0, Q4_1, Q5_1, Q4_K, Q5_K, Q6_K, Q4_G128, Q4_0_R16, Q8_0_R16 -> throw new CheckpointException(f.path() + ": tensor '" + name + "' is "
                            + t.type() + "; 1-D tensors must be F32, F16 or BF16");
                };
            }
            return out;
        }
    }
}
