package qwen.service.model.gguf;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;
import qwen.service.model.DType;
import qwen.service.model.QuantBlocks;

/**
 * A Qwen-1 GGUF file with random weights, for tests and benchmarks: the metadata of SPEC
 * section 9.1, block matrices, embedding and head in one weight type, norms and the c_attn bias
 * in F32 (as llama.cpp's converter writes them). Values are uniform around 0 with a width of
 * about 1 / sqrt(fan-in), norms around 1, so activations stay in range through many layers.
 * The same (shape, type, seed) always gives the same bytes.
 *
 * <p>The K-quants follow llama.cpp's quantize: a matrix whose rows are not a multiple of 256 long
 * (Qwen-1.8B's ffn_down, rows of 5504) falls back to Q5_0 under Q4_K, to Q5_1 under Q5_K (a
 * Q5_K_S or Q5_K_M file's ffn_down) and to Q8_0 under Q6_K, and Q4_K writes the head
 * (output.weight) as Q6_K and attn_qkv as Q5_K, as a Q4_K_M file does. (A real Q4_K_M file also
 * gives some layers' ffn_down more bits: Q6_K, or Q8_0 where rows of 5504 rule Q6_K out; this
 * writer keeps them at the fallback.)
 *
 * <p>The vocabulary is synthetic but loads in llama.cpp: "gpt2" byte-level BPE whose first 256
 * tokens are the 256 bytes (so any text tokenizes to one token per byte), one merge, "[PAD{id}]"
 * for the other rows, and the three ChatML specials at their Qwen ids when the vocabulary is the
 * real size.
 *
 * @param ffnDim MLP width f (the file stores feed_forward_length = 2f)
 */
public record RandomGguf(int hiddenSize, int numLayers, int numHeads, int ffnDim, int vocabSize,
                         int contextLength, GgmlType type, long seed) {

    private static final ValueLayout.OfFloat LE_FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    public RandomGguf {
        if (type.dtype() == null) {
            throw new IllegalArgumentException(type + " is not a type this writer produces");
        }
        int block = type.dtype().blockSize();
        int ffnBlock = fallback(type).dtype().blockSize();
        if (hiddenSize % block != 0 || ffnDim % ffnBlock != 0 || hiddenSize % numHeads != 0) {
            throw new IllegalArgumentException("hidden " + hiddenSize + " must be a multiple of " + block
                    + " and of the head count, ffn " + ffnDim + " of " + ffnBlock + " (" + type + ")");
        }
    }

    /** The type llama.cpp's quantize writes instead of {@code type} for rows it cannot hold. */
    public static GgmlType fallback(GgmlType type) {
        return switch (type) {
            case Q4_K -> GgmlType.Q5_0;
            case Q5_K -> GgmlType.Q5_1;
            case Q6_K -> GgmlType.Q8_0;
            default -> type;
        };
    }

    /** The type of matrix {@code name} with rows of {@code cols}: see the class comment. */
    public GgmlType typeOf(String name, long cols) {
        if (type == GgmlType.Q4_K && name.equals("output.weight")) {
            return GgmlType.Q6_K;
        }
        if (type == GgmlType.Q4_K && name.endsWith(".attn_qkv.weight")) {
            return GgmlType.Q5_K;
        }
        return cols % type.dtype().blockSize() == 0 ? type : fallback(type);
    }

    /** Qwen-1.8B's shapes. */
    public static RandomGguf qwen18b(GgmlType type, long seed) {
        return new RandomGguf(2048, 24, 16, 5504, 151936, 8192, type, seed);
    }

    /** A tiny model for unit tests. */
    public static RandomGguf tiny(GgmlType type, long seed) {
        return new RandomGguf(64, 2, 4, 96, 320, 256, type, seed);
    }

    /** Writes the file. */
    public void write(Path file) throws IOException {
        List<GgufWriter.Tensor> tensors = new ArrayList<>();
        long d = hiddenSize;
        long f = ffnDim;
        long v = vocabSize;
        tensors.add(matrix("token_embd.weight", d, v, 1f));
        for (int n = 0; n < numLayers; n++) {
            String p = "blk." + n + ".";
            tensors.add(vector(p + "attn_norm.weight", d, 1f, 0.1f));
            tensors.add(matrix(p + "attn_qkv.weight", d, 3 * d, 2f / (float) Math.sqrt(d)));
            tensors.add(vector(p + "attn_qkv.bias", 3 * d, 0f, 0.05f));
            tensors.add(matrix(p + "attn_output.weight", d, d, 0.25f / (float) Math.sqrt(d)));
            tensors.add(vector(p + "ffn_norm.weight", d, 1f, 0.1f));
            tensors.add(matrix(p + "ffn_up.weight", d, f, 1f / (float) Math.sqrt(d)));
            tensors.add(matrix(p + "ffn_gate.weight", d, f, 1f / (float) Math.sqrt(d)));
            tensors.add(matrix(p + "ffn_down.weight", f, d, 0.25f / (float) Math.sqrt(f)));
        }
        tensors.add(vector("output_norm.weight", d, 1f, 0.1f));
        tensors.add(matrix("output.weight", d, v, 4f / (float) Math.sqrt(d)));
        GgufWriter.write(file, metadata(), tensors);
    }

    /** The metadata llama.cpp needs to load the file as architecture "qwen". */
    public Map<String, Object> metadata() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("general.architecture", "qwen");
        m.put("general.name", "random-qwen");
        m.put("general.file_type", fileType());
        m.put("qwen.context_length", contextLength);
        m.put("qwen.block_count", numLayers);
        m.put("qwen.embedding_length", hiddenSize);
        m.put("qwen.feed_forward_length", 2 * ffnDim);
        m.put("qwen.rope.freq_base", 10000f);
        m.put("qwen.rope.dimension_count", hiddenSize / numHeads);
        m.put("qwen.attention.head_count", numHeads);
        m.put("qwen.attention.layer_norm_rms_epsilon", 1e-6f);
        List<String> tokens = new ArrayList<>(vocabSize);
        int[] types = new int[vocabSize];
        String[] bytes = ByteLevel.byteToUnicode();
        for (int i = 0; i < vocabSize; i++) {
            if (i < 256) {
                tokens.add(bytes[i]);
                types[i] = 1;
            } else if (i == 256) {
                tokens.add(bytes[' '] + bytes[' ']);
                types[i] = 1;
            } else {
                tokens.add("[PAD" + i + "]");
                types[i] = 1;
            }
        }
        String[] specials = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
        for (int k = 0; k < specials.length && 151643 + k < vocabSize; k++) {
            tokens.set(151643 + k, specials[k]);
            types[151643 + k] = 3;
        }
        m.put("tokenizer.ggml.model", "gpt2");
        m.put("tokenizer.ggml.pre", "qwen2");
        m.put("tokenizer.ggml.tokens", tokens);
        m.put("tokenizer.ggml.token_type", types);
        m.put("tokenizer.ggml.merges", List.of(bytes[' '] + " " + bytes[' ']));
        int eos = vocabSize > 151643 ? 151643 : 0;
        m.put("tokenizer.ggml.bos_token_id", eos);
        m.put("tokenizer.ggml.eos_token_id", eos);
        m.put("tokenizer.ggml.add_bos_token", false);
        return m;
    }

    /** llama.cpp's LLAMA_FTYPE for a file whose matrices are of this type (Q4_K: Q4_K_M). */
    private int fileType() {
        return switch (type) {
            case F32 -> 0;
            case F16 -> 1;
            case Q4_0 -> 2;
            case Q5_0 -> 8;
            case Q4_1 -> 3;
            case Q5_1 -> 9;
            case Q4_K -> 15;
            case Q5_K -> 16;
            case Q6_K -> 18;
            case Q8_0 -> 7;
            case BF16 -> 32;
            default -> throw new IllegalStateException(type.toString());
        };
    }

    private GgufWriter.Tensor vector(String name, long n, float center, float halfWidth) {
        return new GgufWriter.Tensor(name, new long[] {n}, GgmlType.F32, seg -> {
            long x = start(name, 0);
            for (long i = 0; i < n; i++) {
                x = next(x);
                seg.setAtIndex(LE_FLOAT, i, center + halfWidth * unit(x));
            }
        });
    }

    /** A [rows, cols] matrix, GGUF dims [cols, rows]; rows filled in parallel, each from its own seed. */
    private GgufWriter.Tensor matrix(String name, long cols, long rows, float halfWidth) {
        GgmlType gt = typeOf(name, cols);
        DType dt = gt.dtype();
        long rowBytes = dt.rowBytes(cols);
        return new GgufWriter.Tensor(name, new long[] {cols, rows}, gt, seg ->
                IntStream.range(0, (int) rows).parallel().forEach(r -> {
                    float[] row = new float[(int) cols];
                    long x = start(name, r);
                    for (int i = 0; i < cols; i++) {
                        x = next(x);
                        row[i] = halfWidth * unit(x);
                    }
                    long at = r * rowBytes;
                    switch (dt) {
                        case F32 -> MemorySegment.copy(row, 0, seg, LE_FLOAT, at, row.length);
                        case F16 -> {
                            for (int i = 0; i < cols; i++) {
                                seg.set(LE_SHORT, at + 2L * i, Float.floatToFloat16(row[i]));
                            }
                        }
                        case BF16 -> {
                            for (int i = 0; i < cols; i++) {
                                seg.set(LE_SHORT, at + 2L * i, (short) (Float.floatToRawIntBits(row[i]) >>> 16));
                            }
                        }
                        case Q8_0, Q4_0, Q5_0, Q4_1, Q5_1, Q4_K, Q5_K, Q6_K, Q4_G128, Q4_0_R16, Q8_0_R16 -> QuantBlocks.encode(dt, row, 0, row.length, seg, at);
                    }
                }));
    }

    private long start(String name, long index) {
        long h = seed * 0x9E3779B97F4A7C15L + name.hashCode();
        h = (h ^ (h >>> 31)) * 0xBF58476D1CE4E5B9L + index * 0x94D049BB133111EBL;
        return (h ^ (h >>> 29)) | 1;
    }

    private static long next(long x) {
        x ^= x << 13;
        x ^= x >>> 7;
        x ^= x << 17;
        return x;
    }

    /** Uniform in [-1, 1). */
    private static float unit(long x) {
        return (x >>> 40) * 0x1.0p-23f - 1f;
    }
}
