package qwen.bench.llamacpp;

import de.kherud.llama.InferenceParameters;
import de.kherud.llama.LlamaModel;
import de.kherud.llama.ModelParameters;

/**
 * Prints llama.cpp's greedy continuation of a text prompt on a GGUF file, as one line
 * {@code [llamacpp-greedy] <text>}, then halts the JVM (the binding keeps it alive after close()).
 * Run in a child JVM by the parity test. Arguments: model prompt tokens
 */
public final class LlamaCppGreedy {

    static final String TAG = "[llamacpp-greedy] ";

    private LlamaCppGreedy() {
    }

    public static void main(String[] args) {
        int status = 0;
        try (LlamaModel m = new LlamaModel(new ModelParameters().setModel(args[0]).setThreads(2).setCtxSize(256)
                .setParallel(1).setGpuLayers(0))) {
            String text = m.complete(new InferenceParameters(args[1]).setNPredict(Integer.parseInt(args[2]))
                    .setTemperature(0f).setIgnoreEos(true).setCachePrompt(false));
            System.out.println(TAG + text);
        } catch (Throwable e) {
            e.printStackTrace(System.out);
            status = 1;
        }
        System.out.flush();
        Runtime.getRuntime().halt(status);
    }
}
