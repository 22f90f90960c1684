package qwen.service.model;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import qwen.service.engine.EngineOptions;
import qwen.service.engine.Generator;
import qwen.service.engine.ShardEngine;
import qwen.service.sampling.Sample;
import qwen.service.sampling.SamplingParams;

/**
 * The resident set of a process serving a model at 1.8B shapes: a child JVM started with the
 * shard's own options ({@code service/jvm.args}) opens the model on the vector kernels with two
 * threads, runs a 40-token prompt through the prefill and 8 decode steps, and reports its
 * /proc/self/status. A child rather than the test JVM, because the figure is the serving
 * process's: the test JVM's heap holds whatever the tests before allocated, and it may have
 * written the checkpoint itself.
 */
public final class ServedModelMemory {

    /** 1.4 GB as 1400 MiB, for the peak resident set (VmHWM), just-in-time compilation included. */
    public static final long LIMIT = 1400L << 20;

    private static final String PREFIX = "resident-set ";

    /**
     * @param loaded VmRSS after opening the model, in bytes
     * @param loadedFile RssFile (mapped file pages) after opening the model, in bytes
     * @param served VmRSS after generating, in bytes
     * @param peak VmHWM after generating (the peak resident set over the child's life), in bytes
     * @param detail the child's status lines, for the test log
     */
    public record Figures(long loaded, long loadedFile, long served, long peak, String detail) {
    }

    private ServedModelMemory() {
    }

    /** Serves {@code model} (a checkpoint directory or a .gguf file) in a child JVM and returns its figures. */
    public static Figures measure(Path model) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "@" + Path.of("jvm.args").toAbsolutePath(),           // surefire runs in the module directory
                "-cp", System.getProperty("java.class.path"), ServedModelMemory.class.getName(), model.toString()));
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        List<String> output = new ArrayList<>();
        try (var lines = p.inputReader().lines()) {
            lines.forEach(output::add);
        }
        if (!p.waitFor(5, TimeUnit.MINUTES)) {
            p.destroyForcibly();
            throw new IllegalStateException("the child serving " + model + " did not finish in 5 minutes");
        }
        String result = output.stream().filter(l -> l.startsWith(PREFIX)).findFirst()
                .orElseThrow(() -> new IllegalStateException("the child serving " + model + " exited with " + p.exitValue()
                        + " and no figures:\n" + String.join("\n", output)));
        String[] f = result.substring(PREFIX.length()).split(" ", 5);
        return new Figures(Long.parseLong(f[0]), Long.parseLong(f[1]), Long.parseLong(f[2]), Long.parseLong(f[3]), f[4]);
    }

    /** The child: args[0] is the model; prints one line of figures. */
    public static void main(String[] args) throws Exception {
        Path model = Path.of(args[0]);
        try (ShardEngine e = ShardEngine.open(new EngineOptions(model, null, EngineOptions.KernelSet.VECTOR, 2, 64L << 20))) {
            long loaded = ProcStatus.rss();
            long loadedFile = ProcStatus.kilobytes("RssFile") << 10;
            int[] prompt = new SplittableRandom(3).ints(40, 0, 151643).toArray();
            Generator.Result r = Generator.generate(e, prompt, 9, SamplingParams.greedy(0), Set.of(), id -> { });
            if (r.ids().length != 9) {
                throw new IllegalStateException("generated " + r.ids().length + " tokens, not 9");
            }
            for (Sample s : r.samples()) {
                if (!Float.isFinite(s.logprob())) {
                    throw new IllegalStateException("logprob of token " + s.id() + ": " + s.logprob());
                }
            }
            System.out.println(PREFIX + loaded + " " + loadedFile + " " + ProcStatus.rss() + " "
                    + (ProcStatus.kilobytes("VmHWM") << 10) + " "
                    + String.join(", ", ProcStatus.line("RssAnon"), ProcStatus.line("RssFile"),
                            "Java heap committed " + (Runtime.getRuntime().totalMemory() >> 20) + " MB"));
        }
    }
}
