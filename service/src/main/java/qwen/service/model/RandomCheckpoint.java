package qwen.service.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.IntStream;
import qwen.service.model.safetensors.SafeTensorsWriter;
import qwen.service.model.safetensors.SafeTensorsWriter.TensorSpec;

/**
 * Writes a Qwen-1 model directory with random weights: config.json, generation_config.json and
 * safetensors files laid out exactly like the real checkpoint (SPEC 1.1, 2.2, 5.1). Used by tests,
 * benchmarks and the demo model.
 *
 * <p>Values are deterministic for a seed: each tensor's generator is seeded from (seed, tensor
 * name) and chunk index, so the bytes do not depend on thread scheduling, dtype aside. Chunks are
 * filled in parallel straight into the mapped file; a 1.8B-shaped BF16 checkpoint (3.7 GB) takes
 * seconds of CPU (the rest is the disk).
 *
 * <p>Magnitudes keep a 24-layer forward pass finite and its greedy continuations varied (checked
 * with a scalar reference forward at d = 256..1024): matrices are uniform in +-s/sqrt(cols) with
 * s = 2 for c_attn (so attention is not flat), 0.25 for both c_proj (so the blocks' outputs, which
 * attention smears across the context, do not drown the last token's embedding: with s = 1 every
 * context decoded to the same token, with 0.35 greedy decoding soon repeated one token) and 4 for
 * lm_head (logits of std about 2.3, a clear maximum); 1 elsewhere. The embedding is uniform in +-1,
 * norm weights 1 +- 0.1, the c_attn bias +-0.05.
 *
 * @param hiddenSize model width d; a multiple of numHeads
 * @param numLayers transformer blocks
 * @param numHeads attention heads; head dim (kv_channels) = hiddenSize / numHeads
 * @param ffnDim MLP width f; config.json's intermediate_size is 2f
 * @param vocabSize embedding and lm_head rows
 * @param seqLength config seq_length (and max_position_embeddings)
 * @param dtype dtype of every tensor
 * @param shards 1 for a single model.safetensors, else that many model-0000N-of-0000M files and an index
 * @param seed random seed
 * @param tiktoken a qwen.tiktoken to copy into the directory, or null for none
 */
public record RandomCheckpoint(int hiddenSize, int numLayers, int numHeads, int ffnDim, int vocabSize,
        int seqLength, DType dtype, int shards, long seed, Path tiktoken) {

    private static final int CHUNK = 1 << 16;
    private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    public RandomCheckpoint {
        if (hiddenSize <= 0 || numLayers <= 0 || numHeads <= 0 || ffnDim <= 0 || vocabSize <= 0 || seqLength <= 0
                || shards <= 0 || hiddenSize % numHeads != 0) {
            throw new IllegalArgumentException("bad random checkpoint sizes: " + hiddenSize + "/" + numLayers + "/"
                    + numHeads + "/" + ffnDim + "/" + vocabSize + "/" + seqLength + "/" + shards);
        }
        if (dtype == null || dtype.quantized()) {
            throw new IllegalArgumentException("dtype must be F32, F16 or BF16, got " + dtype);
        }
    }

    /** Qwen-1_8B-Chat's real shapes: d 2048, 24 layers, 16 heads of 128, f 5504, vocab 151936, BF16 in 2 files. */
    public static RandomCheckpoint qwen18B() {
        return new RandomCheckpoint(2048, 24, 16, 5504, 151936, 8192, DType.BF16, 2, 1, null);
    }

    /** A model small enough for unit tests: d 64, 4 layers, 4 heads of 16, f 96, vocab 512, seq_length 256, BF16. */
    public static RandomCheckpoint tiny() {
        return new RandomCheckpoint(64, 4, 4, 96, 512, 256, DType.BF16, 1, 1, null);
    }

    public RandomCheckpoint withLayers(int layers) {
        return new RandomCheckpoint(hiddenSize, layers, numHeads, ffnDim, vocabSize, seqLength, dtype, shards, seed, tiktoken);
    }

    public RandomCheckpoint withVocabSize(int vocab) {
        return new RandomCheckpoint(hiddenSize, numLayers, numHeads, ffnDim, vocab, seqLength, dtype, shards, seed, tiktoken);
    }

    public RandomCheckpoint withDtype(DType type) {
        return new RandomCheckpoint(hiddenSize, numLayers, numHeads, ffnDim, vocabSize, seqLength, type, shards, seed, tiktoken);
    }

    public RandomCheckpoint withShards(int files) {
        return new RandomCheckpoint(hiddenSize, numLayers, numHeads, ffnDim, vocabSize, seqLength, dtype, files, seed, tiktoken);
    }

    public RandomCheckpoint withSeed(long newSeed) {
        return new RandomCheckpoint(hiddenSize, numLayers, numHeads, ffnDim, vocabSize, seqLength, dtype, shards, newSeed, tiktoken);
    }

    public RandomCheckpoint withTiktoken(Path file) {
        return new RandomCheckpoint(hiddenSize, numLayers, numHeads, ffnDim, vocabSize, seqLength, dtype, shards, seed, file);
    }

    /** The config a loader reads back from the written config.json. */
    public QwenConfig config() {
        return new QwenConfig(hiddenSize, numLayers, numHeads, hiddenSize / numHeads, ffnDim, vocabSize, seqLength,
                10000.0, 1e-6f, true, true);
    }

    /** Writes the model into {@code dir} (created if needed; earlier weight files there are removed) and returns it. */
    public Path writeTo(Path dir) {
        try {
            Files.createDirectories(dir);
            removeOldWeights(dir);
            Files.writeString(dir.resolve(ModelDirectory.CONFIG), configJson(), StandardCharsets.UTF_8);
            Files.writeString(dir.resolve("generation_config.json"), generationConfigJson(), StandardCharsets.UTF_8);
            if (tiktoken != null) {
                Files.copy(tiktoken, dir.resolve("qwen.tiktoken"), StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write random checkpoint to " + dir + ": " + e.getMessage(), e);
        }
        writeWeights(dir);
        return dir;
    }

    private void writeWeights(Path dir) {
        List<TensorSpec> specs = new ArrayList<>();
        CheckpointLayout.shapes(config()).forEach((name, shape) ->
                specs.add(new TensorSpec(name, dtype, shape, segment -> fill(segment, name, shape))));
        if (shards == 1) {
            SafeTensorsWriter.write(dir.resolve(ModelDirectory.SINGLE_FILE), specs);
            return;
        }
        if (shards > specs.size()) {
            throw new IllegalArgumentException(shards + " shard files for only " + specs.size() + " tensors");
        }
        List<List<TensorSpec>> groups = split(specs);
        Map<String, String> weightMap = new TreeMap<>();
        long total = 0;
        for (int s = 0; s < groups.size(); s++) {
            String file = String.format("model-%05d-of-%05d.safetensors", s + 1, groups.size());
            SafeTensorsWriter.write(dir.resolve(file), groups.get(s));
            for (TensorSpec t : groups.get(s)) {
                weightMap.put(t.name(), file);
                total += t.byteSize();
            }
        }
        ObjectNode index = JSON.createObjectNode();
        index.putObject("metadata").put("total_size", total);
        ObjectNode map = index.putObject("weight_map");
        weightMap.forEach(map::put);
        try {
            Files.writeString(dir.resolve(ModelDirectory.INDEX), JSON.writeValueAsString(index), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + dir.resolve(ModelDirectory.INDEX), e);
        }
    }

    /** Splits tensors, in order, into {@code shards} non-empty groups of about equal bytes. */
    private List<List<TensorSpec>> split(List<TensorSpec> specs) {
        long total = specs.stream().mapToLong(TensorSpec::byteSize).sum();
        List<List<TensorSpec>> groups = new ArrayList<>();
        groups.add(new ArrayList<>());
        long before = 0;
        for (int i = 0; i < specs.size(); i++) {
            int s = groups.size() - 1;
            boolean behind = specs.size() - i == shards - groups.size();
            if (s < shards - 1 && !groups.get(s).isEmpty() && (before >= (s + 1) * (total / shards) || behind)) {
                groups.add(new ArrayList<>());
            }
            groups.getLast().add(specs.get(i));
            before += specs.get(i).byteSize();
        }
        return groups;
    }

    /** Fills one tensor, chunk by chunk in parallel; chunk k's values depend only on (seed, name, k). */
    private void fill(MemorySegment out, String name, long[] shape) {
        long count = out.byteSize() / dtype.bytes();
        float center = shape.length == 1 && !name.endsWith(CheckpointLayout.C_ATTN_BIAS) ? 1f : 0f;
        float halfWidth = halfWidth(name, shape);
        long tensorSeed = mix(seed ^ mix(fnv(name)));
        int chunks = Math.toIntExact((count + CHUNK - 1) / CHUNK);
        IntStream.range(0, chunks).parallel().forEach(k -> {
            long x = mix(tensorSeed + k * 0x9E3779B97F4A7C15L) | 1;
            long end = Math.min(count, (long) (k + 1) * CHUNK);
            for (long i = (long) k * CHUNK; i < end; i++) {
                x ^= x << 13;
                x ^= x >>> 7;
                x ^= x << 17;
                float v = center + halfWidth * ((x >>> 40) * 0x1.0p-23f - 1f);
                switch (dtype) {
                    case F32 -> out.setAtIndex(FLOAT, i, v);
                    case F16 -> out.setAtIndex(SHORT, i, Float.floatToFloat16(v));
                    case BF16 -> out.setAtIndex(SHORT, i, toBf16(v));
                }
            }
        });
    }

    private static float halfWidth(String name, long[] shape) {
        if (name.equals(CheckpointLayout.WTE)) {
            return 1f;
        }
        if (name.endsWith(CheckpointLayout.C_ATTN_BIAS)) {
            return 0.05f;
        }
        if (shape.length == 1) {
            return 0.1f;
        }
        float scale = name.endsWith(CheckpointLayout.C_ATTN) ? 2f
                : name.endsWith(CheckpointLayout.ATTN_C_PROJ) || name.endsWith(CheckpointLayout.MLP_C_PROJ) ? 0.25f
                : name.equals(CheckpointLayout.LM_HEAD) ? 4f
                : 1f;
        return scale / (float) Math.sqrt(shape[1]);
    }

    /** float -> bfloat16 bits, rounding to nearest even (values here are finite). */
    static short toBf16(float v) {
        int bits = Float.floatToRawIntBits(v);
        return (short) ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16);
    }

    private static long fnv(String s) {
        long h = 0xcbf29ce484222325L;
        for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
            h = (h ^ (b & 0xff)) * 0x100000001b3L;
        }
        return h;
    }

    /** SplitMix64's finaliser. */
    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }

    private static void removeOldWeights(Path dir) throws IOException {
        try (DirectoryStream<Path> old = Files.newDirectoryStream(dir, "model*.safetensors*")) {
            for (Path p : old) {
                Files.delete(p);
            }
        }
    }

    private String configJson() throws IOException {
        ObjectNode c = JSON.createObjectNode();
        c.putArray("architectures").add("QWenLMHeadModel");
        c.put("attn_dropout_prob", 0.0);
        ObjectNode autoMap = c.putObject("auto_map");
        autoMap.put("AutoConfig", "configuration_qwen.QWenConfig");
        autoMap.put("AutoModelForCausalLM", "modeling_qwen.QWenLMHeadModel");
        c.put("bf16", dtype == DType.BF16);
        c.put("emb_dropout_prob", 0.0);
        c.put("fp16", dtype == DType.F16);
        c.put("fp32", dtype == DType.F32);
        c.put("hidden_size", hiddenSize);
        c.put("initializer_range", 0.02);
        c.put("intermediate_size", 2 * ffnDim);
        c.put("kv_channels", hiddenSize / numHeads);
        c.put("layer_norm_epsilon", 1e-6);
        c.put("max_position_embeddings", seqLength);
        c.put("model_type", "qwen");
        c.put("no_bias", true);
        c.put("num_attention_heads", numHeads);
        c.put("num_hidden_layers", numLayers);
        c.putNull("onnx_safe");
        c.put("rotary_emb_base", 10000);
        c.put("rotary_pct", 1.0);
        c.put("scale_attn_weights", true);
        c.put("seq_length", seqLength);
        c.put("softmax_in_fp32", false);
        c.put("tie_word_embeddings", false);
        c.put("tokenizer_class", "QWenTokenizer");
        c.put("torch_dtype", switch (dtype) {
            case BF16 -> "bfloat16";
            case F16 -> "float16";
            case F32 -> "float32";
            case Q8_0, Q4_0, Q5_0, Q4_1, Q5_1, Q4_K, Q5_K, Q6_K, Q4_G128, Q4_0_R16, Q8_0_R16 -> throw new IllegalStateException("a safetensors checkpoint holds no " + dtype.tag());
        });
        c.put("transformers_version", "4.32.0");
        c.put("use_cache", true);
        c.put("use_cache_kernel", false);
        c.put("use_cache_quantization", false);
        c.put("use_dynamic_ntk", true);
        c.put("use_flash_attn", "auto");
        c.put("use_logn_attn", true);
        c.put("vocab_size", vocabSize);
        return JSON.writeValueAsString(c);
    }

    private static String generationConfigJson() throws IOException {
        ObjectNode g = JSON.createObjectNode();
        g.put("chat_format", "chatml");
        g.put("eos_token_id", 151643);
        g.put("pad_token_id", 151643);
        g.put("max_window_size", 6144);
        g.put("max_new_tokens", 512);
        g.put("do_sample", true);
        g.put("top_k", 0);
        g.put("top_p", 0.8);
        g.put("repetition_penalty", 1.1);
        g.put("transformers_version", "4.31.0");
        return JSON.writeValueAsString(g);
    }
}
