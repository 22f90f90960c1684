package qwen.service.model.gptq;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import qwen.service.model.CheckpointLayout;
import qwen.service.model.ModelDirectory;
import qwen.service.model.PublishedConfigs;
import qwen.service.model.safetensors.SafeTensorsWriter;
import qwen.service.model.safetensors.SafeTensorsWriter.TensorSpec;

/**
 * A GPTQ Int4 checkpoint at Qwen-1_8B-Chat-Int4's shapes (SPEC 7.1: hidden 2048, 24 blocks, 16
 * heads, MLP width 5504, vocab 151936, group 128, symmetric zeros, g_idx = i / 128, f16 wte and
 * lm_head), written through {@link SafeTensorsWriter}: each tensor's elements go straight into its
 * slice of the mapped file, so the 1.88 GB never sit on this JVM's heap. The packed weights are random words, the scales small positive f16 and the
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

    /** Fills {@code count} elements starting at element {@code from} into {@code out}. */
    private interface Elements {
        void fill(ByteBuffer out, long from, int count);
    }

    private record Tensor(String name, String dtype, long[] shape, Elements elements) {
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
        Files.writeString(dir.resolve(ModelDirectory.CONFIG), PublishedConfigs.QWEN_1_8B_CHAT);
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

    /** Through the project's writer: each tensor's elements go straight into its mapped slice. */
    private static long writeSafetensors(Path file, List<Tensor> tensors) {
        List<TensorSpec> specs = new ArrayList<>();
        for (Tensor t : tensors) {
            specs.add(new TensorSpec(t.name(), t.dtype(), t.shape(),
                    slice -> t.elements().fill(slice.asByteBuffer().order(ByteOrder.LITTLE_ENDIAN), 0,
                            Math.toIntExact(t.count()))));
        }
        SafeTensorsWriter.write(file, specs);
        return specs.stream().mapToLong(TensorSpec::byteSize).sum();
    }
}
