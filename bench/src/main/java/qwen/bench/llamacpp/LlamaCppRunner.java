package qwen.bench.llamacpp;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Runs {@link LlamaCppMain} in a child JVM on a GGUF file and collects llama.cpp's own timings
 * from its stdout:
 * <pre>
 * prompt eval time =    1234.56 ms /   512 tokens (    2.41 ms per token,   414.72 tokens per second)
 *        eval time =    5678.90 ms /   256 tokens (   22.18 ms per token,    45.08 tokens per second)
 * </pre>
 * A prefill request's prompt line gives the prefill rate; a decode request's eval line the decode
 * rate (tokens counted by llama.cpp, not by the binding's callbacks).
 */
public final class LlamaCppRunner {

    private static final Pattern PROMPT = Pattern.compile("prompt eval time =\\s*([0-9.]+) ms /\\s*(\\d+) tokens");
    private static final Pattern EVAL = Pattern.compile("^\\s*eval time =\\s*([0-9.]+) ms /\\s*(\\d+) tokens");

    /**
     * Per repeat, llama.cpp's prefill and decode rates.
     *
     * @param prefillTokens prompt tokens llama.cpp reported for each prefill request
     * @param decodeTokens tokens llama.cpp reported for each decode request
     */
    public record Result(List<Double> prefillTokPerSec, List<Double> decodeTokPerSec,
                         List<Integer> prefillTokens, List<Integer> decodeTokens) {
    }

    private LlamaCppRunner() {
    }

    public static Result run(Path gguf, int threads, int promptTokens, int decodeTokens, int repeats,
                             long timeoutSeconds) throws IOException, InterruptedException {
        List<String> cmd = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-Xmx512m",
                "-cp", System.getProperty("java.class.path"), LlamaCppMain.class.getName(),
                gguf.toString(), Integer.toString(threads), Integer.toString(promptTokens),
                Integer.toString(decodeTokens), Integer.toString(repeats));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        List<Double> prefill = new ArrayList<>();
        List<Double> decode = new ArrayList<>();
        List<Integer> prefillTokens = new ArrayList<>();
        List<Integer> decodeCounts = new ArrayList<>();
        List<String> tail = new ArrayList<>();
        String phase = "";
        boolean done = false;
        try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = r.readLine()) != null) {
                tail.add(line);
                if (tail.size() > 40) {
                    tail.removeFirst();
                }
                if (line.startsWith(LlamaCppMain.TAG)) {
                    phase = line.contains("prefill-request") ? "prefill" : line.contains("decode-request") ? "decode" : phase;
                    done |= line.contains(" done");
                    continue;
                }
                // llama.cpp's own stdout is not ordered with the tags this JVM prints, so a
                // timing line may arrive after the next request's tag: the token counts, not the
                // phase, say which request it belongs to (the prefill request's prompt, the decode
                // request's generated tokens, more than the warm-up's and the prefill request's one).
                Matcher m = PROMPT.matcher(line);
                if (m.find()) {
                    if (Integer.parseInt(m.group(2)) == promptTokens) {
                        prefillTokens.add(Integer.parseInt(m.group(2)));
                        prefill.add(Integer.parseInt(m.group(2)) / (Double.parseDouble(m.group(1)) / 1000));
                    }
                    continue;
                }
                m = EVAL.matcher(line);
                if (!phase.isEmpty() && m.find() && Integer.parseInt(m.group(2)) > LlamaCppMain.WARM_UP_TOKENS) {
                    decodeCounts.add(Integer.parseInt(m.group(2)));
                    decode.add(Integer.parseInt(m.group(2)) / (Double.parseDouble(m.group(1)) / 1000));
                }
            }
        } finally {
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.destroyForcibly();
            }
        }
        if (!done || prefill.size() != repeats || decode.size() != repeats) {
            throw new IOException("llama.cpp run on " + gguf + " did not finish (exit " + p.exitValue() + ", "
                    + prefill.size() + " prefill and " + decode.size() + " decode timings); its last output:\n"
                    + String.join("\n", tail));
        }
        return new Result(prefill, decode, prefillTokens, decodeCounts);
    }
}
