package qwen.bench.jlama;

import static qwen.service.model.CheckpointLayout.ATTN_C_PROJ;
import static qwen.service.model.CheckpointLayout.C_ATTN;
import static qwen.service.model.CheckpointLayout.C_ATTN_BIAS;
import static qwen.service.model.CheckpointLayout.LM_HEAD;
import static qwen.service.model.CheckpointLayout.LN_1;
import static qwen.service.model.CheckpointLayout.LN_2;
import static qwen.service.model.CheckpointLayout.LN_F;
import static qwen.service.model.CheckpointLayout.MLP_C_PROJ;
import static qwen.service.model.CheckpointLayout.W1;
import static qwen.service.model.CheckpointLayout.W2;
import static qwen.service.model.CheckpointLayout.WTE;
import static qwen.service.model.CheckpointLayout.block;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import qwen.service.model.DType;
import qwen.service.model.ModelDirectory;
import qwen.service.model.QwenConfig;
import qwen.service.model.safetensors.SafeTensorsFile;
import qwen.service.model.safetensors.SafeTensorsWriter;
import qwen.service.model.safetensors.TensorInfo;

/**
 * Turns a Qwen-1 checkpoint directory into a Qwen2-layout "twin" that Jlama 0.8.4 loads as model_type
 * qwen2, with the same numbers: every tensor is copied byte for byte (same dtype), only renamed, and
 * c_attn is split by rows into q/k/v.
 *
 * <pre>
 * transformer.wte.weight             -> model.embed_tokens.weight
 * transformer.h.N.ln_1.weight        -> model.layers.N.input_layernorm.weight
 * transformer.h.N.attn.c_attn.weight -> model.layers.N.self_attn.{q,k,v}_proj.weight  rows [0,d) [d,2d) [2d,3d)
 * transformer.h.N.attn.c_attn.bias   -> model.layers.N.self_attn.{q,k,v}_proj.bias
 * transformer.h.N.attn.c_proj.weight -> model.layers.N.self_attn.o_proj.weight
 * transformer.h.N.ln_2.weight        -> model.layers.N.post_attention_layernorm.weight
 * transformer.h.N.mlp.w1.weight      -> model.layers.N.mlp.up_proj.weight     (linear branch)
 * transformer.h.N.mlp.w2.weight      -> model.layers.N.mlp.gate_proj.weight   (SiLU branch)
 * transformer.h.N.mlp.c_proj.weight  -> model.layers.N.mlp.down_proj.weight
 * transformer.ln_f.weight            -> model.norm.weight
 * lm_head.weight                     -> lm_head.weight
 * </pre>
 *
 * <p>config.json: intermediate_size = Qwen-1's value / 2 (the real MLP width), num_key_value_heads =
 * num_attention_heads, rope_theta = rotary_emb_base, rms_norm_eps = layer_norm_epsilon,
 * max_position_embeddings = seq_length, tie_word_embeddings false, hidden_act silu. Qwen-1's dynamic NTK
 * and logn attention only act past seq_length (8192) tokens, so they do not matter for the benchmark.
 *
 * <p>Jlama needs, besides config.json and the safetensors: tokenizer.json in HF tokenizers format (it reads
 * model.vocab/merges/added_tokens; the vocabulary must be a bijection id <-> string). The benchmark feeds
 * token ids, so the twin gets a placeholder vocabulary with one unique string per id (byte-level characters
 * for ids 0..255, {@code <|tN|>} above, Qwen's special-token strings at 151643..) and no merges, plus a
 * minimal tokenizer_config.json. Weights are written in shards of at most ~1.9 GB (Jlama maps each file
 * in pieces under 2 GiB), with model.safetensors.index.json when there is more than one.
 */
public final class Qwen2Twin {

    /** Upper bound for one output shard. */
    static final long MAX_SHARD_BYTES = 1_900_000_000L;

    /** Qwen's <|endoftext|>, used as bos/eos id when the vocabulary is that large. */
    static final int QWEN_ENDOFTEXT = 151643;

    private static final ObjectMapper JSON = new ObjectMapper();

    private Qwen2Twin() {}

    /** One output tensor: its Qwen2 name, dtype, shape and the byte range of a source tensor it copies. */
    private record Part(String name, DType dtype, long[] shape, String source, long offset, long bytes) {}

    /**
     * Writes the twin of the Qwen-1 checkpoint in {@code qwenDir} into {@code outDir} (created if needed;
     * files it writes are replaced). Returns {@code outDir}.
     */
    public static Path write(Path qwenDir, Path outDir) {
        ModelDirectory md = ModelDirectory.open(qwenDir);
        QwenConfig c = md.config();
        try {
            Files.createDirectories(outDir);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }

        Map<Path, SafeTensorsFile> open = new LinkedHashMap<>();
        try {
            Map<String, SafeTensorsFile> byName = new HashMap<>();
            for (Path f : md.weightFiles()) {
                SafeTensorsFile stf = SafeTensorsFile.open(f);
                open.put(f, stf);
                for (String name : stf.tensors().keySet()) {
                    byName.putIfAbsent(name, stf);
                }
            }
            List<Part> parts = plan(c, byName);

            // Group into shards.
            List<List<Part>> shards = new ArrayList<>();
            List<Part> cur = new ArrayList<>();
            long curBytes = 0;
            for (Part p : parts) {
                if (!cur.isEmpty() && curBytes + p.bytes() > MAX_SHARD_BYTES) {
                    shards.add(cur);
                    cur = new ArrayList<>();
                    curBytes = 0;
                }
                cur.add(p);
                curBytes += p.bytes();
            }
            shards.add(cur);

            // Remove stale weight files of an earlier twin in the same directory.
            try (var s = Files.list(outDir)) {
                for (Path old : s.filter(p -> p.getFileName().toString().startsWith("model")
                        && (p.toString().endsWith(".safetensors") || p.toString().endsWith(".index.json")))
                        .toList()) {
                    Files.delete(old);
                }
            }

            Map<String, String> weightMap = new LinkedHashMap<>();
            long total = 0;
            for (int i = 0; i < shards.size(); i++) {
                String fileName = shards.size() == 1
                        ? "model.safetensors"
                        : String.format("model-%05d-of-%05d.safetensors", i + 1, shards.size());
                List<SafeTensorsWriter.TensorSpec> specs = new ArrayList<>();
                for (Part p : shards.get(i)) {
                    SafeTensorsFile src = byName.get(p.source());
                    specs.add(new SafeTensorsWriter.TensorSpec(p.name(), p.dtype(), p.shape(), dst -> {
                        MemorySegment from = src.data(p.source()).asSlice(p.offset(), p.bytes());
                        dst.copyFrom(from);
                    }));
                    weightMap.put(p.name(), fileName);
                    total += p.bytes();
                }
                SafeTensorsWriter.write(outDir.resolve(fileName), specs);
            }
            if (shards.size() > 1) {
                ObjectNode index = JSON.createObjectNode();
                index.putObject("metadata").put("total_size", total);
                ObjectNode wm = index.putObject("weight_map");
                weightMap.forEach(wm::put);
                writeJson(outDir.resolve("model.safetensors.index.json"), index);
            }

            writeJson(outDir.resolve("config.json"), config(c));
            writeTokenizer(outDir, c);
            return outDir;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            open.values().forEach(SafeTensorsFile::close);
        }
    }

    private static List<Part> plan(QwenConfig c, Map<String, SafeTensorsFile> byName) {
        long d = c.hiddenSize();
        long proj = c.projDim();
        List<Part> parts = new ArrayList<>();
        parts.add(whole("model.embed_tokens.weight", WTE, byName));
        for (int n = 0; n < c.numLayers(); n++) {
            String p = "model.layers." + n + ".";
            parts.add(whole(p + "input_layernorm.weight", block(n, LN_1), byName));
            // c_attn [3*proj, d]: rows 0..proj-1 = Q, then K, then V (SPEC 2.2); bias likewise.
            String cattn = block(n, C_ATTN);
            String cbias = block(n, C_ATTN_BIAS);
            String[] qkv = {"q_proj", "k_proj", "v_proj"};
            TensorInfo wi = info(cattn, byName, 3 * proj, d);
            TensorInfo bi = info(cbias, byName, 3 * proj);
            DType wt = dtype(wi);
            DType bt = dtype(bi);
            for (int j = 0; j < 3; j++) {
                long wBytes = proj * d * wt.bytes();
                parts.add(new Part(p + "self_attn." + qkv[j] + ".weight", wt, new long[] {proj, d}, cattn, j * wBytes, wBytes));
                long bBytes = proj * bt.bytes();
                parts.add(new Part(p + "self_attn." + qkv[j] + ".bias", bt, new long[] {proj}, cbias, j * bBytes, bBytes));
            }
            parts.add(whole(p + "self_attn.o_proj.weight", block(n, ATTN_C_PROJ), byName));
            parts.add(whole(p + "post_attention_layernorm.weight", block(n, LN_2), byName));
            parts.add(whole(p + "mlp.gate_proj.weight", block(n, W2), byName));
            parts.add(whole(p + "mlp.up_proj.weight", block(n, W1), byName));
            parts.add(whole(p + "mlp.down_proj.weight", block(n, MLP_C_PROJ), byName));
        }
        parts.add(whole("model.norm.weight", LN_F, byName));
        parts.add(whole("lm_head.weight", LM_HEAD, byName));
        return parts;
    }

    private static Part whole(String name, String source, Map<String, SafeTensorsFile> byName) {
        TensorInfo i = info(source, byName);
        return new Part(name, dtype(i), i.shape(), source, 0, i.byteSize());
    }

    private static TensorInfo info(String source, Map<String, SafeTensorsFile> byName, long... expectShape) {
        SafeTensorsFile f = byName.get(source);
        if (f == null) {
            throw new IllegalArgumentException("checkpoint has no tensor " + source);
        }
        TensorInfo i = f.info(source);
        if (expectShape.length > 0 && !i.hasShape(expectShape)) {
            throw new IllegalArgumentException(source + ": shape " + i.shapeText() + ", expected "
                    + Arrays.toString(expectShape));
        }
        return i;
    }

    private static DType dtype(TensorInfo i) {
        DType t = i.dtype();
        if (t == null) {
            throw new IllegalArgumentException(i.name() + ": dtype " + i.dtypeTag() + " not supported");
        }
        return t;
    }

    /** Qwen2 config.json as Jlama's Qwen2Config reads it (plus the usual HF keys). */
    static ObjectNode config(QwenConfig c) {
        int special = specialId(c.vocabSize());
        ObjectNode n = JSON.createObjectNode();
        n.putArray("architectures").add("Qwen2ForCausalLM");
        n.put("model_type", "qwen2");
        n.put("hidden_size", c.hiddenSize());
        n.put("intermediate_size", c.ffnDim());
        n.put("num_hidden_layers", c.numLayers());
        n.put("num_attention_heads", c.numHeads());
        n.put("num_key_value_heads", c.numHeads());
        n.put("hidden_act", "silu");
        n.put("max_position_embeddings", c.seqLength());
        n.put("rope_theta", c.ropeBase());
        n.put("rms_norm_eps", c.rmsEps());
        n.put("vocab_size", c.vocabSize());
        n.put("bos_token_id", special);
        n.put("eos_token_id", special);
        n.put("tie_word_embeddings", false);
        n.put("use_sliding_window", false);
        n.put("attention_dropout", 0.0);
        n.put("torch_dtype", "bfloat16");
        return n;
    }

    /** bos/eos id: Qwen's <|endoftext|> if the vocabulary has it, else the last id. */
    static int specialId(int vocab) {
        return vocab > QWEN_ENDOFTEXT ? QWEN_ENDOFTEXT : vocab - 1;
    }

    /** Placeholder HF tokenizer files (see class comment). */
    static void writeTokenizer(Path outDir, QwenConfig c) throws IOException {
        int vocab = c.vocabSize();
        int special = specialId(vocab);
        String[] names = new String[vocab];
        int[] byteChars = gpt2ByteChars();
        for (int id = 0; id < vocab; id++) {
            names[id] = id < 256 ? Character.toString(byteChars[id]) : "<|t" + id + "|>";
        }
        List<Integer> specials = new ArrayList<>();
        names[special] = "<|endoftext|>";
        specials.add(special);
        if (vocab > QWEN_ENDOFTEXT + 2) {
            names[QWEN_ENDOFTEXT + 1] = "<|im_start|>";
            names[QWEN_ENDOFTEXT + 2] = "<|im_end|>";
            specials.add(QWEN_ENDOFTEXT + 1);
            specials.add(QWEN_ENDOFTEXT + 2);
            for (int id = QWEN_ENDOFTEXT + 3, k = 0; id < vocab && k < 205; id++, k++) {
                names[id] = "<|extra_" + k + "|>";
                specials.add(id);
            }
        }

        ObjectNode root = JSON.createObjectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        for (int id : specials) {
            ObjectNode t = added.addObject();
            t.put("id", id);
            t.put("content", names[id]);
            t.put("single_word", false);
            t.put("lstrip", false);
            t.put("rstrip", false);
            t.put("normalized", false);
            t.put("special", true);
        }
        root.putNull("normalizer");
        root.putNull("pre_tokenizer");
        root.putNull("post_processor");
        root.putNull("decoder");
        ObjectNode model = root.putObject("model");
        model.put("type", "BPE");
        model.putNull("dropout");
        model.putNull("unk_token");
        model.putNull("continuing_subword_prefix");
        model.putNull("end_of_word_suffix");
        model.put("fuse_unk", false);
        model.put("byte_fallback", false);
        model.put("ignore_merges", false);
        ObjectNode v = model.putObject("vocab");
        for (int id = 0; id < vocab; id++) {
            v.put(names[id], id);
        }
        model.putArray("merges");
        writeJson(outDir.resolve("tokenizer.json"), root);

        ObjectNode tc = JSON.createObjectNode();
        tc.put("tokenizer_class", "Qwen2Tokenizer");
        tc.put("model_max_length", c.seqLength());
        tc.put("eos_token", "<|endoftext|>");
        tc.put("pad_token", "<|endoftext|>");
        tc.put("add_bos_token", false);
        tc.put("legacy", false);
        writeJson(outDir.resolve("tokenizer_config.json"), tc);
    }

    /** GPT-2's bytes_to_unicode: byte b -> printable code point. */
    static int[] gpt2ByteChars() {
        int[] map = new int[256];
        int extra = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = printable ? b : 256 + extra++;
        }
        return map;
    }

    private static void writeJson(Path file, Object node) throws IOException {
        Files.writeString(file, JSON.writeValueAsString(node));
    }
}
