package qwen.service.model;

import static qwen.service.model.CheckpointLayout.ATTN_C_PROJ;
import static qwen.service.model.CheckpointLayout.C_ATTN;
import static qwen.service.model.CheckpointLayout.C_ATTN_BIAS;
import static qwen.service.model.CheckpointLayout.LN_1;
import static qwen.service.model.CheckpointLayout.LN_2;
import static qwen.service.model.CheckpointLayout.MLP_C_PROJ;
import static qwen.service.model.CheckpointLayout.W1;
import static qwen.service.model.CheckpointLayout.W2;
import static qwen.service.model.CheckpointLayout.block;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import qwen.service.model.safetensors.SafeTensorsFile;
import qwen.service.model.safetensors.TensorInfo;

/**
 * Loads the part of a Qwen-1 checkpoint that one shard serves. Matrices stay memory-mapped in
 * their stored dtype (BF16, F16 or F32, per tensor); only the 1-D norm weights and the c_attn bias
 * are converted to float[]. Only the files holding the range's tensors are mapped.
 */
public final class CheckpointLoader {

    private static final ValueLayout.OfShort F16_BITS = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private CheckpointLoader() {
    }

    /**
     * Loads blocks {@code range.first() .. range.end() - 1}, plus wte if {@code range.embedding()}
     * and ln_f + lm_head if {@code range.head()}, from the model directory {@code modelDir}.
     * Every file it maps is checked whole: a tensor the model does not have (other than the rotary
     * inv_freq and masked_bias buffers HF ignores) is an error, as are a missing tensor, a wrong
     * shape, an unsupported dtype or a corrupt file. Messages name the file and tensor.
     * Close the returned weights to unmap the files.
     */
    public static ShardWeights load(Path modelDir, LayerRange range) {
        ModelDirectory model = ModelDirectory.open(modelDir);
        QwenConfig config = model.config();
        if (range.end() > config.numLayers()) {
            throw new CheckpointException(model.dir().resolve(ModelDirectory.CONFIG) + ": layer range " + range
                    + " is outside the model's " + config.numLayers() + " blocks (0-" + (config.numLayers() - 1) + ")");
        }
        Map<String, long[]> all = CheckpointLayout.shapes(config);
        for (String name : model.weightMap().keySet()) {
            checkKnown(all, model.lookupFile(), name);
        }
        MappedFiles files = new MappedFiles(all);
        try {
            Map<String, long[]> needed = CheckpointLayout.shapes(config, range);
            Tensors t = new Tensors(model, files, needed);
            List<LayerWeights> layers = new ArrayList<>();
            for (int n = range.first(); n < range.end(); n++) {
                layers.add(new LayerWeights(n, t.vector(block(n, LN_1)), t.matrix(block(n, C_ATTN)),
                        t.vector(block(n, C_ATTN_BIAS)), t.matrix(block(n, ATTN_C_PROJ)), t.vector(block(n, LN_2)),
                        t.matrix(block(n, W1)), t.matrix(block(n, W2)), t.matrix(block(n, MLP_C_PROJ))));
            }
            Matrix wte = range.embedding() ? t.matrix(CheckpointLayout.WTE) : null;
            float[] lnF = range.head() ? t.vector(CheckpointLayout.LN_F) : null;
            Matrix lmHead = range.head() ? t.matrix(CheckpointLayout.LM_HEAD) : null;
            return new ShardWeights(config, range, wte, List.copyOf(layers), lnF, lmHead, files);
        } catch (RuntimeException e) {
            files.close();
            throw e;
        }
    }

    /** Converts a 1-D tensor of any supported dtype to floats. */
    static float[] toFloats(MemorySegment data, DType dtype, int length) {
        float[] out = new float[length];
        for (int i = 0; i < length; i++) {
            out[i] = switch (dtype) {
                case F32 -> data.getAtIndex(F32, i);
                case F16 -> Float.float16ToFloat(data.getAtIndex(F16_BITS, i));
                case BF16 -> Float.intBitsToFloat((data.getAtIndex(F16_BITS, i) & 0xffff) << 16);
                case Q8_0, Q4_0, Q5_0, Q4_1, Q5_1, Q4_K, Q5_K, Q6_K, Q4_G128, Q4_0_R16, Q8_0_R16 -> throw new IllegalArgumentException(dtype.tag() + " vectors are not loaded");
            };
        }
        return out;
    }

    private static void checkKnown(Map<String, long[]> all, Path file, String name) {
        if (!all.containsKey(name) && !CheckpointLayout.ignored(name)) {
            throw new CheckpointException(file + ": unexpected tensor '" + name
                    + "' is not part of a Qwen-1 model with this config.json (wrong model, a quantized"
                    + " checkpoint, or num_hidden_layers too small?)");
        }
    }

    /** Looks tensors up in the mapped files and checks them against the expected shapes. */
    private record Tensors(ModelDirectory model, MappedFiles files, Map<String, long[]> needed) {

        Matrix matrix(String name) {
            Found f = find(name);
            long[] shape = f.info().shape();
            return new Matrix(name, f.dtype(), Math.toIntExact(shape[0]), Math.toIntExact(shape[1]), f.data());
        }

        float[] vector(String name) {
            Found f = find(name);
            return toFloats(f.data(), f.dtype(), Math.toIntExact(f.info().dim(0)));
        }

        private Found find(String name) {
            long[] expected = needed.get(name);
            Path path = model.fileOf(name);
            if (path == null) {
                throw new CheckpointException(model.lookupFile() + ": tensor '" + name + "' (shape "
                        + Arrays.toString(expected) + ") is missing from weight_map");
            }
            SafeTensorsFile file = files.open(path);
            TensorInfo info = file.tensors().get(name);
            if (info == null) {
                throw new CheckpointException(path + ": tensor '" + name + "' (shape " + Arrays.toString(expected)
                        + ") is missing" + (model.sharded() ? " (weight_map in " + ModelDirectory.INDEX
                        + " says it is in this file)" : ""));
            }
            DType dtype = info.dtype();
            if (dtype == null) {
                throw new CheckpointException(path + ": tensor '" + name + "' has dtype " + info.dtypeTag()
                        + ", which this server does not load (supported: BF16, F16, F32)");
            }
            if (!info.hasShape(expected)) {
                throw new CheckpointException(path + ": tensor '" + name + "' has shape " + info.shapeText()
                        + ", expected " + Arrays.toString(expected) + " from config.json");
            }
            return new Found(info, dtype, file.data(name));
        }
    }

    private record Found(TensorInfo info, DType dtype, MemorySegment data) {
    }

    /** The files mapped so far; each is checked for unknown tensors when first opened. */
    private static final class MappedFiles implements AutoCloseable {
        private final Map<String, long[]> all;
        private final Map<Path, SafeTensorsFile> open = new LinkedHashMap<>();

        MappedFiles(Map<String, long[]> all) {
            this.all = all;
        }

        SafeTensorsFile open(Path path) {
            SafeTensorsFile file = open.get(path);
            if (file == null) {
                file = SafeTensorsFile.open(path);
                open.put(path, file);
                for (String name : file.tensors().keySet()) {
                    checkKnown(all, path, name);
                }
            }
            return file;
        }

        @Override
        public void close() {
            for (SafeTensorsFile file : open.values()) {
                file.close();
            }
            open.clear();
        }
    }
}
