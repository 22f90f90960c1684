package qwen.service.model.gptq;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;
import qwen.service.model.CheckpointException;
import qwen.service.model.CheckpointLayout;
import qwen.service.model.DType;
import qwen.service.model.LayerRange;
import qwen.service.model.LayerWeights;
import qwen.service.model.Matrix;
import qwen.service.model.ModelDirectory;
import qwen.service.model.QwenConfig;
import qwen.service.model.ShardWeights;
import qwen.service.model.safetensors.SafeTensorsFile;
import qwen.service.model.safetensors.TensorInfo;

/**
 * Loads Qwen's GPTQ checkpoints (Qwen-1_8B-Chat-Int4 / -Int8; AutoGPTQ v1 format, SPEC section
 * 7.1): a model directory with {@code quantize_config.json} whose block Linears are stored as
 * {@code qweight} (int32, 32/b input rows per word), {@code qzeros} (int32, 32/b output columns
 * per word, stored minus one), {@code scales} (f16) and {@code g_idx}; embedding, norms, ln_f,
 * lm_head and the c_attn bias unquantized.
 *
 * <p>Each quantized Linear is repacked once, exactly, into the block types the kernels read
 * (no dequantized copy): w[c][i] = scale[g][c] * (q(i, c) - (zq(g, c) + 1)) with g = i / group
 * is a block of 32 sharing one f16 scale and an integer offset q - z. Int8 with the symmetric
 * zero 128 becomes Q8_0 (q - 128 in [-128, 127]); Int4 with zero 8 becomes Q4_0 (the nibble is
 * q itself, as Q4_0 also subtracts 8), or Q4_G128 where the groups are multiples of 128 (Qwen's
 * are 128), the same nibbles under one scale per 128; Int4 with other zeros becomes Q8_0 (q - z in [-16, 15]).
 * What cannot be repacked exactly is refused, naming the tensor: Int8 zero points other than 128,
 * group sizes not a multiple of 32, act-order {@code g_idx} (not i / group_size), other bit widths.
 */
public final class GptqLoader {

    public static final String QUANTIZE_CONFIG = "quantize_config.json";
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final String[] LINEARS = {"attn.c_attn", "attn.c_proj", "mlp.w1", "mlp.w2", "mlp.c_proj"};

    /** bits and group_size of quantize_config.json. */
    record QuantizeConfig(int bits, int groupSize) {
    }

    private GptqLoader() {
    }

    /** True when dir is a GPTQ checkpoint (it has a quantize_config.json). */
    public static boolean isGptq(Path dir) {
        return Files.isRegularFile(dir.resolve(QUANTIZE_CONFIG));
    }

    static QuantizeConfig readQuantizeConfig(Path dir) {
        Path file = dir.resolve(QUANTIZE_CONFIG);
        JsonNode n;
        try {
            n = new ObjectMapper().readTree(file.toFile());
        } catch (IOException e) {
            throw new CheckpointException(file + ": cannot read: " + e.getMessage(), e);
        }
        if (n == null || !n.path("bits").isInt() || !n.path("group_size").isInt()) {
            throw new CheckpointException(file + ": needs integer \"bits\" and \"group_size\"");
        }
        int bits = n.get("bits").intValue();
        int group = n.get("group_size").intValue();
        if (bits != 4 && bits != 8) {
            throw new CheckpointException(file + ": bits " + bits + " is not supported (4 or 8)");
        }
        if (group <= 0 || group % 32 != 0) {
            throw new CheckpointException(file + ": group_size " + group + " is not supported (a positive multiple of 32)");
        }
        return new QuantizeConfig(bits, group);
    }

    /** Loads blocks range.first() .. range.end() - 1, plus the embedding and head where the range holds them. */
    public static ShardWeights load(Path dir, LayerRange range) {
        QuantizeConfig q = readQuantizeConfig(dir);
        ModelDirectory model = ModelDirectory.open(dir);
        QwenConfig cfg = model.config();
        if (range.end() > cfg.numLayers()) {
            throw new CheckpointException(dir.resolve(ModelDirectory.CONFIG) + ": layer range " + range
                    + " is outside the model's " + cfg.numLayers() + " blocks");
        }
        Tensors files = new Tensors(model);
        Arena arena = Arena.ofShared();
        try {
            List<LayerWeights> layers = new ArrayList<>();
            int d = cfg.hiddenSize();
            int f = cfg.ffnDim();
            for (int n = range.first(); n < range.end(); n++) {
                String p = "transformer.h." + n + ".";
                layers.add(new LayerWeights(n, files.vector(p + CheckpointLayout.LN_1, d),
                        files.linear(p + "attn.c_attn", d, 3 * d, q, arena),
                        files.vector(p + CheckpointLayout.C_ATTN_BIAS, 3 * d),
                        files.linear(p + "attn.c_proj", d, d, q, arena),
                        files.vector(p + CheckpointLayout.LN_2, d),
                        files.linear(p + "mlp.w1", d, f, q, arena),
                        files.linear(p + "mlp.w2", d, f, q, arena),
                        files.linear(p + "mlp.c_proj", f, d, q, arena)));
            }
            Matrix wte = range.embedding() ? files.matrix(CheckpointLayout.WTE, cfg.vocabSize(), d) : null;
            float[] lnF = range.head() ? files.vector(CheckpointLayout.LN_F, d) : null;
            Matrix head = range.head() ? files.matrix(CheckpointLayout.LM_HEAD, cfg.vocabSize(), d) : null;
            return new ShardWeights(cfg, range, wte, List.copyOf(layers), lnF, head, () -> {
                try (arena) {
                    files.close();
                }
            });
        } catch (RuntimeException e) {
            arena.close();
            files.close();
            throw e;
        }
    }

    /** The checkpoint's files, mapped on first use. */
    private static final class Tensors implements AutoCloseable {
        private final ModelDirectory model;
        private final Map<Path, SafeTensorsFile> open = new LinkedHashMap<>();

        Tensors(ModelDirectory model) {
            this.model = model;
        }

        TensorInfo info(String name, String dtype, long... shape) {
            Path path = model.fileOf(name);
            if (path == null) {
                throw new CheckpointException(model.lookupFile() + ": tensor '" + name + "' is missing");
            }
            TensorInfo info = file(path).tensors().get(name);
            if (info == null) {
                throw new CheckpointException(path + ": tensor '" + name + "' is missing");
            }
            if (dtype != null && !info.dtypeTag().equals(dtype)) {
                throw new CheckpointException(path + ": tensor '" + name + "' has dtype " + info.dtypeTag() + ", expected " + dtype);
            }
            if (!info.hasShape(shape)) {
                throw new CheckpointException(path + ": tensor '" + name + "' has shape " + info.shapeText()
                        + ", expected " + java.util.Arrays.toString(shape));
            }
            return info;
        }

        MemorySegment data(String name) {
            return file(model.fileOf(name)).data(name);
        }

        SafeTensorsFile file(Path path) {
            return open.computeIfAbsent(path, SafeTensorsFile::open);
        }

        Matrix matrix(String name, int rows, int cols) {
            TensorInfo info = info(name, null, rows, cols);
            if (info.dtype() == null) {
                throw new CheckpointException(model.fileOf(name) + ": tensor '" + name + "' has dtype " + info.dtypeTag()
                        + " (expected F16, BF16 or F32)");
            }
            return new Matrix(name, info.dtype(), rows, cols, data(name));
        }

        float[] vector(String name, int n) {
            TensorInfo info = info(name, null, n);
            DType t = info.dtype();
            if (t == null) {
                throw new CheckpointException(model.fileOf(name) + ": tensor '" + name + "' has dtype " + info.dtypeTag());
            }
            MemorySegment s = data(name);
            float[] out = new float[n];
            for (int i = 0; i < n; i++) {
                out[i] = switch (t) {
                    case F32 -> s.getAtIndex(F32, i);
                    case F16 -> Float.float16ToFloat(s.getAtIndex(U16, i));
                    case BF16 -> Float.intBitsToFloat((s.getAtIndex(U16, i) & 0xFFFF) << 16);
                    default -> throw new IllegalStateException();
                };
            }
            Matrix.release(s);
            return out;
        }

        /** Linear {@code prefix} with in = inputs, out = outputs, repacked to Q8_0, Q4_0 or Q4_G128. */
        Matrix linear(String prefix, int inputs, int outputs, QuantizeConfig q, Arena arena) {
            int b = q.bits();
            int per = 32 / b;
            int g = q.groupSize();
            int groups = (inputs + g - 1) / g;
            if (inputs % g != 0 && inputs % 32 != 0) {
                throw new CheckpointException(prefix + ": in_features " + inputs + " is not a multiple of 32");
            }
            info(prefix + ".qweight", "I32", inputs / per, outputs);
            info(prefix + ".qzeros", "I32", groups, outputs / per);
            info(prefix + ".scales", "F16", groups, outputs);
            info(prefix + ".g_idx", "I32", inputs);
            MemorySegment qw = data(prefix + ".qweight");
            MemorySegment qz = data(prefix + ".qzeros");
            MemorySegment sc = data(prefix + ".scales");
            MemorySegment gi = data(prefix + ".g_idx");
            for (int i = 0; i < inputs; i++) {
                if (gi.getAtIndex(I32, i) != i / g) {
                    throw new CheckpointException(model.fileOf(prefix + ".g_idx") + ": tensor '" + prefix + ".g_idx' has g_idx["
                            + i + "] = " + gi.getAtIndex(I32, i) + ", not i / group_size = " + i / g
                            + " (act-order checkpoints, desc_act true, are not supported)");
                }
            }
            int mask = (1 << b) - 1;
            boolean q4 = b == 4;
            boolean symmetric = true;
            for (int gr = 0; gr < groups; gr++) {
                for (int c = 0; c < outputs; c++) {
                    int z = zero(qz, outputs, per, b, mask, gr, c);
                    if (z != (1 << (b - 1))) {
                        symmetric = false;
                        if (!q4) {
                            throw new CheckpointException(model.fileOf(prefix + ".qzeros") + ": tensor '" + prefix
                                    + ".qzeros' has zero point " + z + " at group " + gr + ", column " + c
                                    + "; Int8 is loaded only with the symmetric zero point 128");
                        }
                    }
                }
            }
            DType type = type(q4 && symmetric, g, inputs);
            long rowBytes = type.rowBytes(inputs);
            int parts = type.blockSize() / 32;
            MemorySegment out = arena.allocate(outputs * rowBytes, 64);
            IntStream.range(0, outputs).parallel().forEach(c -> {
                for (int part = 0; part < inputs / 32; part++) {
                    int gr = 32 * part / g;
                    long at = c * rowBytes + (long) (part / parts) * type.blockBytes();
                    long quants = at + type.partOffset(part % parts);
                    out.set(U16, at, sc.getAtIndex(U16, (long) gr * outputs + c));
                    int z = zero(qz, outputs, per, b, mask, gr, c);
                    for (int k = 0; k < 32; k++) {
                        int i = 32 * part + k;
                        int word = qw.getAtIndex(I32, (long) (i / per) * outputs + c);
                        int qv = (word >>> (b * (i % per))) & mask;
                        if (type == DType.Q8_0) {
                            out.set(ValueLayout.JAVA_BYTE, quants + k, (byte) (qv - z));
                        } else {
                            long byteAt = quants + (k % 16);
                            int old = out.get(ValueLayout.JAVA_BYTE, byteAt) & 0xFF;
                            out.set(ValueLayout.JAVA_BYTE, byteAt, (byte) (k < 16 ? (old & 0xF0) | qv : (old & 0x0F) | qv << 4));
                        }
                    }
                }
            });
            // The source tensors are read once: drop their pages from the resident set now, or
            // the whole mapped GPTQ file (600 MB at 1.8B) stays resident next to its repacked copy.
            for (MemorySegment source : List.of(qw, qz, sc, gi)) {
                Matrix.release(source);
            }
            return new Matrix(prefix + ".qweight", type, outputs, inputs, out);
        }

        /**
         * The block type a Linear is repacked to. Symmetric Int4 (zero point 8, Qwen's) is Q4_0's
         * grid, d * (q - 8); groups of a multiple of 128 keep one scale per 128 weights (Q4_G128,
         * 55 MB less than Q4_0's scale per 32 at 1.8B shapes). Everything else becomes Q8_0: Int8
         * (symmetric, checked above) and Int4 with other zero points, q - z in [-15, 15].
         */
        private static DType type(boolean symmetricInt4, int groupSize, int inputs) {
            if (!symmetricInt4) {
                return DType.Q8_0;
            }
            return groupSize % 128 == 0 && inputs % 128 == 0 ? DType.Q4_G128 : DType.Q4_0;
        }

        /** The true zero point of (group, column): the stored value plus one (AutoGPTQ v1). */
        private static int zero(MemorySegment qz, int outputs, int per, int b, int mask, int gr, int c) {
            int word = qz.getAtIndex(I32, (long) gr * (outputs / per) + c / per);
            return ((word >>> (b * (c % per))) & mask) + 1;
        }

        @Override
        public void close() {
            for (SafeTensorsFile f : open.values()) {
                f.close();
            }
            open.clear();
        }
    }
}
