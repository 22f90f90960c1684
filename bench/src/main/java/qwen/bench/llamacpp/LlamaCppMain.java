package qwen.bench.llamacpp;

import de.kherud.llama.InferenceParameters;
import de.kherud.llama.LlamaModel;
import de.kherud.llama.ModelParameters;
import java.util.SplittableRandom;

/**
 * The llama.cpp side of {@code ./qwen bench-quant}, run in its own JVM by {@link LlamaCppRunner}:
 * loads a GGUF file through the de.kherud:llama binding (llama.cpp's server code, CPU only) and
 * runs, per repeat, one prefill request (a prompt of exactly the asked number of tokens, one
 * token predicted) and one decode request (a 16-token prompt, the asked number of tokens
 * predicted, EOS ignored, greedy), with prompt caching off. The figures are llama.cpp's own
 * "prompt eval time" and "eval time" lines, which the binding's native code prints to stdout;
 * the runner parses them from there (the binding's token callbacks merge partial UTF-8 tokens,
 * so counting callbacks would undercount). Exits explicitly: the JVM does not end after close().
 *
 * <p>Arguments: model threads promptTokens decodeTokens repeats
 */
public final class LlamaCppMain {

    /** Marks the lines this class prints, apart from llama.cpp's own output. */
    static final String TAG = "[llamacpp-bench]";
    /** Tokens the warm-up request generates; the runner counts only longer decodes. */
    static final int WARM_UP_TOKENS = 4;

    private LlamaCppMain() {
    }

    public static void main(String[] args) {
        int status = 0;
        try {
            run(args[0], Integer.parseInt(args[1]), Integer.parseInt(args[2]), Integer.parseInt(args[3]),
                    Integer.parseInt(args[4]));
        } catch (Throwable e) {
            System.out.println(TAG + " error " + e);
            e.printStackTrace(System.out);
            status = 1;
        }
        System.out.flush();
        Runtime.getRuntime().halt(status);
    }

    private static void run(String model, int threads, int promptTokens, int decodeTokens, int repeats) {
        ModelParameters mp = new ModelParameters()
                .setModel(model)
                .setThreads(threads)
                .setThreadsBatch(threads)
                .setCtxSize(Math.max(promptTokens, 16 + decodeTokens) + 64)
                .setBatchSize(512)
                .setUbatchSize(512)
                .setParallel(1)
                .setGpuLayers(0);
        try (LlamaModel llama = new LlamaModel(mp)) {
            SplittableRandom rnd = new SplittableRandom(11);
            String warm = letters(rnd, 32);
            llama.complete(request(warm, WARM_UP_TOKENS));
            for (int r = 0; r < repeats; r++) {
                String prompt = letters(rnd, promptTokens);
                int n = llama.encode(prompt).length;
                System.out.println(TAG + " prefill-request tokens=" + n);
                llama.complete(request(prompt, 1));
                System.out.println(TAG + " decode-request");
                llama.complete(request(letters(rnd, 16), decodeTokens));
            }
            System.out.println(TAG + " done");
        }
    }

    /** Lower-case letters: with the byte-level vocabulary of the benchmark's files, one token each. */
    private static String letters(SplittableRandom rnd, int n) {
        StringBuilder s = new StringBuilder(n);
        for (int i = 0; i < n; i++) {
            s.append((char) ('a' + rnd.nextInt(26)));
        }
        return s.toString();
    }

    private static InferenceParameters request(String prompt, int predict) {
        return new InferenceParameters(prompt)
                .setNPredict(predict)
                .setIgnoreEos(true)
                .setTemperature(0f)
                .setCachePrompt(false)
                .setSeed(1);
    }
}
