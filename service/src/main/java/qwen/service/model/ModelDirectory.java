package qwen.service.model;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;

/**
 * A Hugging Face Qwen-1 model directory: config.json plus either one {@code model.safetensors} or
 * a {@code model.safetensors.index.json} whose weight_map names the shard file of every tensor.
 *
 * @param dir the directory
 * @param config hyper-parameters read from config.json
 * @param weightFiles the safetensors files, in the order the index first names them
 * @param weightMap tensor name to file, from the index; empty for a single-file checkpoint
 *     (then every tensor is in {@code weightFiles.get(0)})
 */
public record ModelDirectory(Path dir, QwenConfig config, List<Path> weightFiles, Map<String, Path> weightMap) {

    public static final String CONFIG = "config.json";
    public static final String SINGLE_FILE = "model.safetensors";
    public static final String INDEX = "model.safetensors.index.json";

    private static final ObjectMapper JSON = new ObjectMapper();

    public ModelDirectory {
        weightFiles = List.copyOf(weightFiles);
        weightMap = Collections.unmodifiableMap(new LinkedHashMap<>(weightMap));
    }

    /** Reads config.json and locates the weights; throws {@link CheckpointException} naming the file at fault. */
    public static ModelDirectory open(Path modelDir) {
        Path dir = modelDir.toAbsolutePath().normalize();
        if (!Files.isDirectory(dir)) {
            throw new CheckpointException(dir + ": model directory does not exist");
        }
        QwenConfig config = readConfig(dir.resolve(CONFIG));
        Path single = dir.resolve(SINGLE_FILE);
        if (Files.isRegularFile(single)) {
            return new ModelDirectory(dir, config, List.of(single), Map.of());
        }
        Path index = dir.resolve(INDEX);
        if (Files.isRegularFile(index)) {
            Map<String, Path> weightMap = readIndex(dir, index);
            return new ModelDirectory(dir, config, List.copyOf(new LinkedHashSet<>(weightMap.values())), weightMap);
        }
        throw new CheckpointException(dir + ": no " + SINGLE_FILE + " or " + INDEX
                + (Files.exists(dir.resolve("pytorch_model.bin")) || Files.exists(dir.resolve("pytorch_model.bin.index.json"))
                        ? "; only safetensors checkpoints are supported (convert the pytorch_model*.bin files)"
                        : "; download the model's safetensors files into this directory"));
    }

    /** Whether the weights are split over several files listed by model.safetensors.index.json. */
    public boolean sharded() {
        return !weightMap.isEmpty();
    }

    /** Where tensor {@code name} lives, or null when the index does not list it. */
    public Path fileOf(String name) {
        return sharded() ? weightMap.get(name) : weightFiles.get(0);
    }

    /** The file a missing tensor was looked up in, for messages: the index or the single file. */
    public Path lookupFile() {
        return sharded() ? dir.resolve(INDEX) : weightFiles.get(0);
    }

    /**
     * Parses a Qwen-1 config.json (SPEC 1.1). Rejects other model families, missing or non-numeric
     * fields, partial rotary (rotary_pct != 1), kv_channels * heads != hidden_size and an odd
     * intermediate_size. The MLP width is intermediate_size / 2.
     */
    public static QwenConfig readConfig(Path file) {
        JsonNode root = readJson(file);
        String modelType = root.path("model_type").asText("");
        boolean qwenArch = false;
        for (JsonNode a : root.path("architectures")) {
            qwenArch |= a.asText().equals("QWenLMHeadModel");
        }
        if (!modelType.equals("qwen") && !qwenArch) {
            throw new CheckpointException(file + ": model_type '" + modelType + "', architectures "
                    + root.path("architectures") + " is not a Qwen-1 model; this server loads only Qwen-1"
                    + " (model_type \"qwen\", architectures [\"QWenLMHeadModel\"]); Qwen1.5/Qwen2 (\"qwen2\") differ");
        }
        int hidden = positiveInt(file, root, "hidden_size");
        int layers = positiveInt(file, root, "num_hidden_layers");
        int heads = positiveInt(file, root, "num_attention_heads");
        int kvChannels = positiveInt(file, root, "kv_channels");
        int intermediate = positiveInt(file, root, "intermediate_size");
        int vocab = positiveInt(file, root, "vocab_size");
        int seqLength = positiveInt(file, root, "seq_length");
        double ropeBase = positiveNumber(file, root, "rotary_emb_base");
        double eps = positiveNumber(file, root, "layer_norm_epsilon");
        JsonNode rotaryPct = root.get("rotary_pct");
        if (rotaryPct != null && !(rotaryPct.isNumber() && rotaryPct.doubleValue() == 1.0)) {
            throw new CheckpointException(file + ": rotary_pct is " + rotaryPct
                    + "; only 1.0 (every head dimension rotated) is supported");
        }
        if ((long) kvChannels * heads != hidden) {
            throw new CheckpointException(file + ": kv_channels " + kvChannels + " x num_attention_heads " + heads
                    + " = " + (long) kvChannels * heads + " differs from hidden_size " + hidden);
        }
        if (intermediate % 2 != 0) {
            throw new CheckpointException(file + ": intermediate_size " + intermediate
                    + " is odd; Qwen-1's MLP width is intermediate_size / 2");
        }
        return new QwenConfig(hidden, layers, heads, kvChannels, intermediate / 2, vocab, seqLength, ropeBase,
                (float) eps, flag(file, root, "use_dynamic_ntk"), flag(file, root, "use_logn_attn"));
    }

    private static Map<String, Path> readIndex(Path dir, Path index) {
        JsonNode map = readJson(index).get("weight_map");
        if (map == null || !map.isObject()) {
            throw new CheckpointException(index + ": lacks a \"weight_map\" object (tensor name -> shard file)");
        }
        Map<String, Path> weightMap = new LinkedHashMap<>();
        List<String> absent = new ArrayList<>();
        for (Map.Entry<String, JsonNode> e : map.properties()) {
            String name = e.getValue().asText("");
            Path file = dir.resolve(name).normalize();
            if (!e.getValue().isTextual() || name.isEmpty() || !dir.equals(file.getParent())) {
                throw new CheckpointException(index + ": weight_map entry for tensor '" + e.getKey()
                        + "' must name a file in the model directory, found " + e.getValue());
            }
            if (!Files.isRegularFile(file) && !absent.contains(name)) {
                absent.add(name);
            }
            weightMap.put(e.getKey(), file);
        }
        if (!absent.isEmpty()) {
            throw new CheckpointException(index + ": weight_map names shard file(s) " + absent
                    + " that are not in " + dir);
        }
        return weightMap;
    }

    private static JsonNode readJson(Path file) {
        try {
            JsonNode root = JSON.readTree(Files.readString(file));
            if (root == null || !root.isObject()) {
                throw new CheckpointException(file + ": expected a JSON object");
            }
            return root;
        } catch (JacksonException e) {
            throw new CheckpointException(file + ": not valid JSON (" + e.getOriginalMessage() + ")");
        } catch (IOException e) {
            throw new CheckpointException(file + ": cannot read (" + e + ")", e);
        }
    }

    private static int positiveInt(Path file, JsonNode root, String field) {
        JsonNode v = required(file, root, field);
        if (!v.canConvertToExactIntegral() || !v.canConvertToInt() || v.asInt() <= 0) {
            throw new CheckpointException(file + ": " + field + " must be a positive integer, found " + v);
        }
        return v.asInt();
    }

    private static double positiveNumber(Path file, JsonNode root, String field) {
        JsonNode v = required(file, root, field);
        if (!v.isNumber() || !(v.doubleValue() > 0)) {
            throw new CheckpointException(file + ": " + field + " must be a positive number, found " + v);
        }
        return v.doubleValue();
    }

    private static JsonNode required(Path file, JsonNode root, String field) {
        JsonNode v = root.get(field);
        if (v == null || v.isNull()) {
            throw new CheckpointException(file + ": required field \"" + field + "\" is missing");
        }
        return v;
    }

    private static boolean flag(Path file, JsonNode root, String field) {
        JsonNode v = root.get(field);
        if (v == null || v.isNull()) {
            return true;
        }
        if (!v.isBoolean()) {
            throw new CheckpointException(file + ": " + field + " must be true or false, found " + v);
        }
        return v.booleanValue();
    }
}
