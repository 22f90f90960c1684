package qwen.bench.llamacpp;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.api.condition.EnabledOnOs;
import org.junit.jupiter.api.condition.OS;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import qwen.service.engine.EngineOptions;
import qwen.service.engine.Generator;
import qwen.service.engine.ShardEngine;
import qwen.service.model.gguf.GgmlType;
import qwen.service.model.gguf.RandomGguf;
import qwen.service.sampling.SamplingParams;

/**
 * Our engine and llama.cpp (the de.kherud:llama binding's bundled Linux x86-64 build, run in a
 * child JVM) give the same greedy continuation on the same GGUF file, for each weight type the
 * benchmark uses: the file layout, the tensor mapping (ffn_up = w1, ffn_gate = w2 under SiLU) and
 * the block decoding agree with llama.cpp's. Random weights at a small width but the real
 * vocabulary size; the continuation is compared as text through the file's byte-level
 * vocabulary ({@link RandomGguf}: ids 0..255 are bytes, 256 two spaces, others "[PAD{id}]").
 */
@EnabledOnOs(value = OS.LINUX)
@EnabledIfSystemProperty(named = "os.arch", matches = "amd64|x86_64",
        disabledReason = "the binding's bundled llama.cpp used here is the Linux x86-64 build")
class LlamaCppParityTest {

    @TempDir
    Path tmp;

    /**
     * Q4_K is the Q4_K_M-like mix of {@link RandomGguf} (Q4_K matrices, Q5_K attn_qkv, Q6_K head);
     * with an MLP width of 288 its ffn_down rows are not a multiple of 256 and fall back to Q5_0.
     * Q5_K holds every matrix in Q5_K, or with a width of 288 its ffn_down in Q5_1 (as a Q5_K_S
     * file of Qwen-1.8B does); Q4_1 and Q5_1 hold every matrix in that type.
     */
    @ParameterizedTest(name = "{0}, ffn {1}")
    @CsvSource({"Q8_0, 512", "Q4_0, 512", "F16, 512", "Q4_K, 512", "Q5_K, 512", "Q6_K, 512", "Q4_K, 288", "Q4_1, 512",
        "Q5_1, 512", "Q5_K, 288"})
    void greedyContinuationEqualsLlamaCpp(GgmlType type, int ffn) throws Exception {
        Path file = tmp.resolve("small-" + type + "-" + ffn + ".gguf");
        new RandomGguf(256, 2, 4, ffn, 151936, 1024, type, 1).write(file);
        String prompt = "hello world this is a test";
        int n = 12;
        ByteArrayOutputStream ours = new ByteArrayOutputStream();
        try (ShardEngine e = ShardEngine.open(new EngineOptions(file, null, EngineOptions.KernelSet.VECTOR, 2, 64L << 20))) {
            Generator.Result r = Generator.generate(e, prompt.chars().toArray(), n, SamplingParams.greedy(0), Set.of(), id -> { });
            for (int id : r.ids()) {
                if (id < 256) {
                    ours.write(id);
                } else {
                    ours.writeBytes((id == 256 ? "  " : "[PAD" + id + "]").getBytes(StandardCharsets.UTF_8));
                }
            }
        }
        String theirs = llamaCpp(file, prompt, n);
        assertEquals(ours.toString(StandardCharsets.UTF_8), theirs, type + ": our greedy continuation vs llama.cpp's");
        assertTrue(theirs.length() > n, "a continuation of " + n + " tokens");
    }

    private static String llamaCpp(Path file, String prompt, int n) throws Exception {
        List<String> cmd = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-Xmx256m", "-cp", System.getProperty("java.class.path"),
                LlamaCppGreedy.class.getName(), file.toString(), prompt, Integer.toString(n));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        Thread reader = Thread.ofVirtual().start(() -> {
            try {
                p.getInputStream().transferTo(out);
            } catch (java.io.IOException ignored) {
                // the process ended
            }
        });
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("llama.cpp did not finish in 120 s");
        }
        reader.join(5000);
        String all = out.toString(StandardCharsets.UTF_8);
        for (String line : all.split("\n")) {
            if (line.startsWith(LlamaCppGreedy.TAG)) {
                return line.substring(LlamaCppGreedy.TAG.length());
            }
        }
        throw new AssertionError("no continuation from llama.cpp (exit " + p.exitValue() + "):\n" + all);
    }
}
