package qwen.gateway.chat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The model repository's {@code generation_config.json} (SPEC 5.1): the defaults a request falls
 * back to for each parameter it leaves out.
 *
 * @param chatFormat prompt format; always "chatml", the only one Qwen's chat() accepts
 * @param eosTokenId end-of-sequence id, 151643 ({@code <|endoftext|>})
 * @param padTokenId padding id, 151643
 * @param maxWindowSize history budget in tokens for {@link ChatTemplate#makeContext}, 6144
 * @param maxNewTokens most tokens generated per reply, 512
 * @param doSample sample (true) or pick greedily (false)
 * @param topK keep the k most likely tokens; 0 disables top-k
 * @param topP nucleus probability mass in (0, 1]; 1.0 disables top-p
 * @param repetitionPenalty HF repetition penalty; 1.0 disables it
 * @param temperature logit divisor; absent from Qwen's file, so HF's default 1.0 (no warper)
 */
public record GenerationDefaults(
        String chatFormat,
        int eosTokenId,
        int padTokenId,
        int maxWindowSize,
        int maxNewTokens,
        boolean doSample,
        int topK,
        double topP,
        double repetitionPenalty,
        double temperature) {

    /** Classpath location of the bundled Qwen-1_8B-Chat generation config. */
    public static final String BUNDLED_RESOURCE = "/qwen/generation_config.json";

    private static final ObjectMapper JSON = new ObjectMapper();

    public GenerationDefaults {
        if (!"chatml".equals(chatFormat)) {
            throw new IllegalArgumentException(
                    "chat_format must be \"chatml\", the only format this gateway builds; got " + chatFormat);
        }
    }

    /**
     * Parses a generation_config.json; unknown keys (such as transformers_version) are ignored.
     *
     * @param source where the JSON came from, for error messages
     * @throws IOException if it is not JSON, or a required key is missing or has the wrong type
     * @throws IllegalArgumentException if chat_format is not "chatml"
     */
    public static GenerationDefaults parse(InputStream json, String source) throws IOException {
        JsonNode root = JSON.readTree(json);
        if (root == null || !root.isObject()) {
            throw new IOException(source + ": expected a JSON object");
        }
        JsonNode temperature = root.get("temperature");
        return new GenerationDefaults(
                required(root, "chat_format", source).asText(),
                requiredInt(root, "eos_token_id", source),
                requiredInt(root, "pad_token_id", source),
                requiredInt(root, "max_window_size", source),
                requiredInt(root, "max_new_tokens", source),
                requiredBoolean(root, "do_sample", source),
                requiredInt(root, "top_k", source),
                requiredNumber(root, "top_p", source),
                requiredNumber(root, "repetition_penalty", source),
                temperature == null || temperature.isNull()
                        ? 1.0
                        : number(temperature, "temperature", source));
    }

    /** Reads a generation_config.json file. */
    public static GenerationDefaults fromFile(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            return parse(in, file.toString());
        }
    }

    /**
     * Reads the bundled copy of Qwen-1_8B-Chat's generation_config.json.
     *
     * @throws IllegalStateException if the resource is missing
     * @throws UncheckedIOException if it cannot be read or parsed
     */
    public static GenerationDefaults bundled() {
        try (InputStream in = GenerationDefaults.class.getResourceAsStream(BUNDLED_RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException("classpath resource " + BUNDLED_RESOURCE + " is missing");
            }
            return parse(in, "classpath:" + BUNDLED_RESOURCE);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static JsonNode required(JsonNode root, String key, String source) throws IOException {
        JsonNode value = root.get(key);
        if (value == null || value.isNull()) {
            throw new IOException(source + ": \"" + key + "\" is missing");
        }
        return value;
    }

    private static int requiredInt(JsonNode root, String key, String source) throws IOException {
        JsonNode value = required(root, key, source);
        if (!value.isIntegralNumber() || !value.canConvertToInt()) {
            throw new IOException(source + ": \"" + key + "\" must be an integer, got " + value);
        }
        return value.intValue();
    }

    private static boolean requiredBoolean(JsonNode root, String key, String source) throws IOException {
        JsonNode value = required(root, key, source);
        if (!value.isBoolean()) {
            throw new IOException(source + ": \"" + key + "\" must be true or false, got " + value);
        }
        return value.booleanValue();
    }

    private static double requiredNumber(JsonNode root, String key, String source) throws IOException {
        return number(required(root, key, source), key, source);
    }

    private static double number(JsonNode value, String key, String source) throws IOException {
        if (!value.isNumber()) {
            throw new IOException(source + ": \"" + key + "\" must be a number, got " + value);
        }
        return value.doubleValue();
    }
}
