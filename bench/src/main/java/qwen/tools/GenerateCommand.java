package qwen.tools;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import qwen.gateway.tokenizer.QwenTokenizer;
import qwen.gateway.tokenizer.SpecialTokens;
import qwen.service.engine.EngineOptions;
import qwen.service.engine.Generator;
import qwen.service.engine.ShardEngine;
import qwen.service.model.CheckpointException;
import qwen.service.sampling.Sample;
import qwen.service.sampling.SamplingParams;
import qwen.service.sampling.TokenLogprob;

/**
 * {@code ./qwen generate}: one prompt through the engine, printed as one JSON object
 * {@code {"ids":[...], "top_logprobs":[[{"id":I,"logprob":L}, ...], ...]}} where the logprobs are
 * the natural-log softmax of the raw logits (before any penalty). With {@code --prompt} the text is
 * tokenized as Qwen's tokenizer does by default (special tokens in the text allowed).
 */
public final class GenerateCommand {

    private GenerateCommand() {
    }

    public static void main(String[] argv) throws Exception {
        try {
            run(argv);
        } catch (IllegalArgumentException | CheckpointException e) {
            System.err.println("qwen generate: " + e.getMessage());
            System.exit(2);
        }
    }

    private static void run(String[] argv) throws Exception {
        Args a = new Args(argv, Set.of("model", "prompt-ids", "prompt", "max-new-tokens", "temperature", "top-k",
                "top-p", "repetition-penalty", "seed", "top-logprobs", "stop-ids", "layers", "threads", "kv-budget-mb",
                "quantize"),
                Set.of("scalar", "text"));
        Path model = Path.of(a.required("model"));
        int[] prompt = a.has("prompt-ids") ? a.integers("prompt-ids") : tokenize(model, a.required("prompt"));
        float temperature = a.real("temperature", 1f);
        SamplingParams params = new SamplingParams(temperature == 0f, temperature, a.integer("top-k", 0),
                a.real("top-p", 1f), a.real("repetition-penalty", 1f), a.integer("seed", 0), a.integer("top-logprobs", 0));
        Set<Integer> stops = IntStream.of(a.has("stop-ids") ? a.integers("stop-ids") : new int[] {151643, 151644, 151645})
                .boxed().collect(Collectors.toSet());
        EngineOptions options = new EngineOptions(model, a.get("layers", null),
                a.has("scalar") ? EngineOptions.KernelSet.SCALAR : EngineOptions.KernelSet.VECTOR,
                a.integer("threads", Runtime.getRuntime().availableProcessors()),
                a.integer("kv-budget-mb", 1024) * 1024L * 1024L);
        Generator.Result result;
        qwen.service.model.DType quantize = null;
        if (a.has("quantize")) {
            quantize = qwen.service.model.DType.valueOf(a.required("quantize").toUpperCase(java.util.Locale.ROOT));
            if (!quantize.quantized()) {
                throw new IllegalArgumentException("--quantize must be Q8_0 or Q4_0, got " + quantize.tag());
            }
        }
        try (ShardEngine engine = ShardEngine.open(options, quantize)) {
            result = Generator.generate(engine, prompt, a.integer("max-new-tokens", 16), params, stops, id -> { });
        }
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("ids", result.ids());
        List<List<Map<String, Object>>> tops = new ArrayList<>();
        for (Sample s : result.samples()) {
            List<Map<String, Object>> top = new ArrayList<>();
            for (TokenLogprob t : s.top()) {
                Map<String, Object> entry = new LinkedHashMap<>();
                entry.put("id", t.id());
                entry.put("logprob", t.logprob());
                top.add(entry);
            }
            tops.add(top);
        }
        json.put("top_logprobs", tops);
        if (a.has("text")) {
            json.put("text", tokenizerFor(model).decode(result.ids(), true));
        }
        System.out.println(new ObjectMapper().writeValueAsString(json));
    }

    private static int[] tokenize(Path model, String text) throws Exception {
        return tokenizerFor(model).encode(text, SpecialTokens.ALL);
    }

    /**
     * The model directory's qwen.tiktoken (for a GGUF file: the one beside it) when there is one,
     * else the bundled copy of the real vocabulary.
     */
    private static QwenTokenizer tokenizerFor(Path model) throws Exception {
        Path file = qwen.service.model.gguf.GgufLoader.isGguf(model)
                ? model.toAbsolutePath().resolveSibling("qwen.tiktoken") : model.resolve("qwen.tiktoken");
        return Files.exists(file) ? QwenTokenizer.fromFile(file) : QwenTokenizer.bundled();
    }
}
