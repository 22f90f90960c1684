package qwen.service.model.gptq;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import qwen.service.model.CheckpointLayout;
import qwen.service.model.ModelDirectory;

/**
 * A GPTQ Int4 checkpoint at Qwen-1_8B-Chat-Int4's shapes (SPEC 7.1: hidden 2048, 24 blocks, 16
 * heads, MLP width 5504, vocab 151936, group 128, symmetric zeros, g_idx = i / 128, f16 wte and
 * lm_head), written tensor by tensor through a 4 MiB buffer so that the 1.88 GB file never sits in
 * this JVM's memory. The packed weights are random words, the scales small positive f16 and the
 * embedding and head small random f16: a model for measuring memory and running generation with
 * finite logits, not for its outputs.
 */
final class StreamedGptqCheckpoint {

    static final int HIDDEN = 2048;
    static final int LAYERS = 24;
    static final int FFN = 5504;
    static final int VOCAB = 151936;
    static final int GROUP = 128;

    /** Tensor bytes of Qwen-1_8B-Chat-Int4's model.safetensors (SPEC 7.1 size check). */
    static final long QWEN_INT4_TENSOR_BYTES = 1_877_311_488L;

    /** Qwen-1_8B-Chat's config.json, every field as published. */
    private static final String CONFIG = """
            {
              "architectures": ["QWenLMHeadModel"],
              "attn_dropout_prob": 0.0,
              "auto_map": {
                "AutoConfig": "configuration_qwen.QWenConfig",
                "AutoModelForCausalLM": "modeling_qwen.QWenLMHeadModel"
              },
              "bf16": true,
              "emb_dropout_prob": 0.0,
              "fp16": false,
              "fp32": false,
              "hidden_size": 2048,
              "initializer_range": 0.02,
              "intermediate_size": 11008,
              "kv_channels": 128,
              "layer_norm_epsilon": 1e-06,
              "max_position_embeddings": 8192,
              "model_type": "qwen",
              "no_bias": true,
              "num_attention_heads": 16,
              "num_hidden_layers": 24,
              "onnx_safe": null,
              "rotary_emb_base": 10000,
              "rotary_pct": 1.0,
              "scale_attn_weights": true,
              "seq_length": 8192,
              "softmax_in_fp32": false,
              "tie_word_embeddings": false,
              "tokenizer_class": "QWenTokenizer",
              "torch_dtype": "bfloat16",
              "transformers_version": "4.37.2",
              "use_cache": true,
              "use_cache_kernel": false,
              "use_cache_quantization": false,
              "use_dynamic_ntk": true,
              "use_flash_attn": true,
              "use_logn_attn": true,
              "vocab_size": 151936
            }
            """;

    /** Fills {@code count} elements starting at element {@code from} into {@code out}. */
    private interface Elements {
        void fill(ByteBuffer out, long from, int count);
    }

    private record Tensor(String name, String dtype, long[] shape, Elements elements) {
        int elementBytes() {
            return dtype.equals("I32") ? 4 : 2;
        }

        long count() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return n;
        }
    }

    private StreamedGptqCheckpoint() {
    }

    /** Writes config.json, quantize_config.json and model.safetensors into dir; returns the tensor bytes. */
    static long write(Path dir, long seed) throws IOException {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve(ModelDirectory.CONFIG), CONFIG);
        Files.writeString(dir.resolve(GptqLoader.QUANTIZE_CONFIG), "{\"bits\": 4, \"group_size\": " + GROUP
                + ", \"damp_percent\": 0.01, \"desc_act\": false, \"static_groups\": false, \"sym\": true,"
                + " \"true_sequential\": true, \"model_name_or_path\": null, \"model_file_base_name\": \"model\"}");
        SplittableRandom rnd = new SplittableRandom(seed);
        List<Tensor> tensors = new ArrayList<>();
        tensors.add(f16(CheckpointLayout.WTE, randomHalves(rnd.split()), VOCAB, HIDDEN));
        for (int n = 0; n < LAYERS; n++) {
            String p = "transformer.h." + n + ".";
            tensors.add(f16(p + CheckpointLayout.LN_1, ones(), HIDDEN));
            linear(tensors, p + "attn.c_attn", HIDDEN, 3 * HIDDEN, rnd);
            tensors.add(f16(p + CheckpointLayout.C_ATTN_BIAS, randomHalves(rnd.split()), 3 * HIDDEN));
            linear(tensors, p + "attn.c_proj", HIDDEN, HIDDEN, rnd);
            tensors.add(f16(p + CheckpointLayout.LN_2, ones(), HIDDEN));
            linear(tensors, p + "mlp.w1", HIDDEN, FFN, rnd);
            linear(tensors, p + "mlp.w2", HIDDEN, FFN, rnd);
            linear(tensors, p + "mlp.c_proj", FFN, HIDDEN, rnd);
        }
        tensors.add(f16(CheckpointLayout.LN_F, ones(), HIDDEN));
        tensors.add(f16(CheckpointLayout.LM_HEAD, randomHalves(rnd.split()), VOCAB, HIDDEN));
        return writeSafetensors(dir.resolve(ModelDirectory.SINGLE_FILE), tensors);
    }

    /** The four AutoGPTQ tensors of one Int4 Linear (SPEC 7.1 table). */
    private static void linear(List<Tensor> out, String prefix, int in, int outputs, SplittableRandom rnd) {
        int groups = (in + GROUP - 1) / GROUP;
        SplittableRandom words = rnd.split();
        SplittableRandom scales = rnd.split();
        out.add(new Tensor(prefix + ".qweight", "I32", new long[] {in / 8, outputs}, (b, from, count) -> {
            for (int k = 0; k < count; k++) {
                b.putInt(words.nextInt());
            }
        }));
        // Zero point 8 stored minus one in every nibble: the symmetric Int4 that Qwen ships (sym true).
        out.add(new Tensor(prefix + ".qzeros", "I32", new long[] {groups, outputs / 8}, (b, from, count) -> {
            for (int k = 0; k < count; k++) {
                b.putInt(0x77777777);
            }
        }));
        // Scales in [2^-9, 2^-8): |w| <= 8 * scale keeps every projection's output of order one.
        out.add(new Tensor(prefix + ".scales", "F16", new long[] {groups, outputs}, (b, from, count) -> {
            for (int k = 0; k < count; k++) {
                b.putShort((short) (6 << 10 | scales.nextInt(1 << 10)));
            }
        }));
        out.add(new Tensor(prefix + ".g_idx", "I32", new long[] {in}, (b, from, count) -> {
            for (int k = 0; k < count; k++) {
                b.putInt((int) ((from + k) / GROUP));
            }
        }));
    }

    private static Tensor f16(String name, Elements elements, long... shape) {
        return new Tensor(name, "F16", shape, elements);
    }

    private static Elements ones() {
        return (b, from, count) -> {
            for (int k = 0; k < count; k++) {
                b.putShort(Float.floatToFloat16(1f));
            }
        };
    }

    /** Random signs and mantissas with exponent 2^-7: magnitudes in [0.0078, 0.0156), four per random long. */
    private static Elements randomHalves(SplittableRandom rnd) {
        return (b, from, count) -> {
            for (int k = 0; k < count; k += 4) {
                long bits = rnd.nextLong();
                for (int j = 0; j < 4 && k + j < count; j++) {
                    b.putShort((short) ((bits >>> (16 * j)) & 0x83FF | 8 << 10));
                }
            }
        };
    }

    /** Header first (offsets known from the shapes), then each tensor streamed in chunks. */
    private static long writeSafetensors(Path file, List<Tensor> tensors) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode header = json.createObjectNode();
        long offset = 0;
        for (Tensor t : tensors) {
            ObjectNode e = header.putObject(t.name());
            e.put("dtype", t.dtype());
            ArrayNode shape = e.putArray("shape");
            for (long d : t.shape()) {
                shape.add(d);
            }
            long bytes = t.count() * t.elementBytes();
            e.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
        }
        byte[] h = json.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        int padded = (h.length + 7) / 8 * 8;
        ByteBuffer buf = ByteBuffer.allocateDirect(4 << 20).order(ByteOrder.LITTLE_ENDIAN);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.WRITE)) {
            buf.putLong(padded).put(h);
            for (int i = h.length; i < padded; i++) {
                buf.put((byte) ' ');
            }
            drain(ch, buf);
            for (Tensor t : tensors) {
                long n = t.count();
                int chunk = buf.capacity() / t.elementBytes();
                for (long from = 0; from < n; from += chunk) {
                    int count = (int) Math.min(chunk, n - from);
                    t.elements().fill(buf, from, count);
                    drain(ch, buf);
                }
            }
        }
        return offset;
    }

    private static void drain(FileChannel ch, ByteBuffer buf) throws IOException {
        buf.flip();
        while (buf.hasRemaining()) {
            ch.write(buf);
        }
        buf.clear();
    }
}
