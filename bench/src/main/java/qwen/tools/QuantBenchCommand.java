package qwen.tools;

import static qwen.tools.Figures.loadAverage;
import static qwen.tools.Figures.log;
import static qwen.tools.Figures.median;
import static qwen.tools.Figures.round;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import qwen.bench.llamacpp.LlamaCppRunner;
import qwen.service.engine.EngineOptions;
import qwen.service.engine.Generator;
import qwen.service.engine.ShardEngine;
import qwen.service.model.gguf.GgmlType;
import qwen.service.model.gguf.RandomGguf;
import qwen.service.sampling.SamplingParams;

/**
 * {@code ./qwen bench-quant}: for each GGUF weight type (default Q8_0, Q4_0, F16; also Q5_0, Q4_1,
 * Q5_1, Q5_K, Q6_K and Q4_K, the latter the Q4_K_M-like mix of {@link RandomGguf}), writes a random-weight GGUF file
 * at Qwen-1.8B shapes, then runs our engine and llama.cpp (through the
 * de.kherud:llama 4.1.0 binding, in a child JVM) on that same file back to back: prefill tok/s on
 * a 512-token prompt and decode tok/s for 256 tokens after a 16-token prompt, medians of the
 * repeats, and the ratios. Prints one JSON object; progress goes to stderr.
 */
public final class QuantBenchCommand {

    private QuantBenchCommand() {
    }

    public static void main(String[] argv) throws Exception {
        Args a;
        try {
            a = new Args(argv, Set.of("types", "threads", "prompt-tokens", "decode-tokens", "repeats", "dir"),
                    Set.of("no-llama", "keep"));
        } catch (IllegalArgumentException e) {
            System.err.println("qwen bench-quant: " + e.getMessage());
            System.exit(2);
            return;
        }
        int threads = a.integer("threads", Runtime.getRuntime().availableProcessors());
        int promptTokens = a.integer("prompt-tokens", 512);
        int decodeTokens = a.integer("decode-tokens", 256);
        int repeats = a.integer("repeats", 3);
        List<GgmlType> types = new ArrayList<>();
        for (String t : a.get("types", "Q8_0,Q4_0,F16").split(",")) {
            GgmlType type;
            try {
                type = GgmlType.valueOf(t.trim().toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                type = null;
            }
            if (type == null || type.dtype() == null) {
                System.err.println("qwen bench-quant: --types: '" + t + "' is not one of " + Arrays.stream(GgmlType.values())
                        .filter(g -> g.dtype() != null).map(GgmlType::name).collect(java.util.stream.Collectors.joining(", ")));
                System.exit(2);
                return;
            }
            types.add(type);
        }
        boolean keep = a.has("keep") || a.has("dir");
        Path dir = a.has("dir") ? Files.createDirectories(Path.of(a.required("dir"))) : Files.createTempDirectory("qwen-bench-quant-");
        Map<String, Object> report = new LinkedHashMap<>();
        report.put("threads", threads);
        report.put("load_average_at_start", loadAverage());
        try {
            for (GgmlType type : types) {
                Path file = dir.resolve("qwen-1_8b-random-" + type.name().toLowerCase(Locale.ROOT) + ".gguf");
                if (!Files.exists(file)) {
                    long t0 = System.nanoTime();
                    RandomGguf.qwen18b(type, 1).write(file);
                    log("wrote %s (%.2f GB) in %.1f s", file, Files.size(file) / 1e9, (System.nanoTime() - t0) / 1e9);
                } else {
                    log("reusing %s", file);
                }
                Map<String, Object> row = new LinkedHashMap<>();
                row.put("file_GB", round(Files.size(file) / 1e9));
                row.put("load_average", loadAverage());
                double[] ours = ours(file, threads, promptTokens, decodeTokens, repeats);
                row.put("prefill_tok_s", round(ours[0]));
                row.put("decode_tok_s", round(ours[1]));
                if (!a.has("no-llama")) {
                    LlamaCppRunner.Result l = LlamaCppRunner.run(file, threads, promptTokens, decodeTokens, repeats, 3600);
                    double lp = median(l.prefillTokPerSec());
                    double ld = median(l.decodeTokPerSec());
                    row.put("llamacpp_prefill_tok_s", round(lp));
                    row.put("llamacpp_decode_tok_s", round(ld));
                    row.put("llamacpp_prefill_tokens", l.prefillTokens());
                    row.put("llamacpp_decode_tokens", l.decodeTokens());
                    row.put("prefill_vs_llamacpp", round(ours[0] / lp));
                    row.put("decode_vs_llamacpp", round(ours[1] / ld));
                    log("%s: ours prefill %.2f decode %.2f tok/s; llama.cpp prefill %.2f decode %.2f tok/s (runs %s / %s);"
                                    + " ratio prefill %.2fx decode %.2fx", type, ours[0], ours[1], lp, ld,
                            l.prefillTokPerSec(), l.decodeTokPerSec(), ours[0] / lp, ours[1] / ld);
                }
                report.put(type.name(), row);
            }
        } finally {
            if (!keep) {
                try (var paths = Files.list(dir)) {
                    for (Path p : paths.toList()) {
                        Files.deleteIfExists(p);
                    }
                }
                Files.deleteIfExists(dir);
            }
        }
        report.put("load_average_at_end", loadAverage());
        System.out.println(new com.fasterxml.jackson.databind.ObjectMapper().writeValueAsString(report));
        System.exit(0);
    }

    /** Our medians {prefill, decode} in tok/s on the file. */
    private static double[] ours(Path file, int threads, int promptTokens, int decodeTokens, int repeats) {
        SamplingParams greedy = SamplingParams.greedy(0);
        EngineOptions options = new EngineOptions(file, null, EngineOptions.KernelSet.VECTOR, threads, 2L << 30);
        try (ShardEngine engine = ShardEngine.open(options)) {
            SplittableRandom rnd = new SplittableRandom(7);
            Generator.generate(engine, rnd.ints(32, 0, 151643).toArray(), 4, greedy, Set.of(), id -> { });   // warm-up
            double[] prefill = new double[repeats];
            double[] decode = new double[repeats];
            for (int r = 0; r < repeats; r++) {
                int[] longPrompt = rnd.ints(promptTokens, 0, 151643).toArray();
                Generator.Result p = Generator.generate(engine, longPrompt, 1, greedy, Set.of(), id -> { });
                prefill[r] = promptTokens / (p.prefillNanos() / 1e9);
                Generator.Result d = Generator.generate(engine, rnd.ints(16, 0, 151643).toArray(), decodeTokens, greedy,
                        Set.of(), id -> { });
                decode[r] = (d.ids().length - 1) / (d.decodeNanos() / 1e9);
                log("ours %s, run %d: prefill %d tokens %.2f tok/s; decode %d tokens %.2f tok/s", file.getFileName(), r + 1,
                        promptTokens, prefill[r], d.ids().length - 1, decode[r]);
            }
            return new double[] {median(prefill), median(decode)};
        }
    }
}
