// Runs Jlama 0.8.4 on a Qwen-1 checkpoint (via a Qwen2-layout twin in a temp dir) and prints one JSON line.
//
// Build (writes bench/target/classpath.txt):
//   cd /work/main && export JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64
//   ./mvnw -q -o -pl bench -am package -DskipTests
// Run:
//   $JAVA_HOME/bin/java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
//     -Xmx8g -cp bench/target/classes:$(cat bench/target/classpath.txt) \
//     qwen.bench.jlama.JlamaMain /path/to/qwen1-model-dir [--threads N] [--prefill 512] [--prompt 16] \
//     [--decode 256] [--seed 42] [--twin-dir DIR] [--keep-twin]
//
// Jlama needs both flags (Vector API; its native SIMD library is loaded through the FFM API). Weights are
// mmapped, not on the heap; Jlama's F32 copies of embed_tokens and lm_head and its KV cache live off heap
// (direct buffers / TensorCache), so -Xmx8g is plenty at 1.8B shapes. The random-weight check against a
// plain float32 reference is qwen.bench.jlama.JlamaCheck (same command line, other main class).
package qwen.bench.jlama;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import qwen.service.model.ModelDirectory;
import qwen.service.model.QwenConfig;

/** Stand-alone Jlama benchmark: Qwen-1 dir in, one JSON line ({@link JlamaRunner.Result#toJson()}) out. */
public final class JlamaMain {

    private JlamaMain() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: JlamaMain <qwen1-model-dir> [--threads N] [--prefill 512] [--prompt 16]"
                    + " [--decode 256] [--seed 42] [--twin-dir DIR] [--keep-twin]");
            System.exit(2);
        }
        Path modelDir = Path.of(args[0]);
        int threads = 0;
        int prefill = 512;
        int prompt = 16;
        int decode = 256;
        long seed = 42;
        Path twinDir = null;
        boolean keep = false;
        for (int i = 1; i < args.length; i++) {
            switch (args[i]) {
                case "--threads" -> threads = Integer.parseInt(args[++i]);
                case "--prefill" -> prefill = Integer.parseInt(args[++i]);
                case "--prompt" -> prompt = Integer.parseInt(args[++i]);
                case "--decode" -> decode = Integer.parseInt(args[++i]);
                case "--seed" -> seed = Long.parseLong(args[++i]);
                case "--twin-dir" -> twinDir = Path.of(args[++i]);
                case "--keep-twin" -> keep = true;
                default -> throw new IllegalArgumentException("unknown argument " + args[i]);
            }
        }

        QwenConfig c = ModelDirectory.open(modelDir).config();
        boolean tempTwin = twinDir == null;
        Path twin = tempTwin ? Files.createTempDirectory("jlama-twin-") : twinDir;
        try {
            long t0 = System.nanoTime();
            Qwen2Twin.write(modelDir, twin);
            double twinSeconds = (System.nanoTime() - t0) / 1e9;
            System.err.printf("twin written to %s in %.1f s%n", twin, twinSeconds);

            int[] longPrompt = promptIds(prefill, c.vocabSize(), seed);
            int[] shortPrompt = promptIds(prompt, c.vocabSize(), seed + 1);
            JlamaRunner.Result r = JlamaRunner.run(twin, longPrompt, shortPrompt, decode, threads);
            System.out.println(r.toJson());
        } finally {
            if (tempTwin && !keep) {
                deleteTree(twin);
            }
        }
    }

    /**
     * Deterministic pseudo-random prompt ids below min(vocab, 151643) (ordinary BPE ids of the real
     * tokenizer), the same for every engine given the same seed.
     */
    public static int[] promptIds(int n, int vocab, long seed) {
        int bound = Math.min(vocab, Qwen2Twin.QWEN_ENDOFTEXT);
        SplittableRandom r = new SplittableRandom(seed);
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = r.nextInt(bound);
        }
        return ids;
    }

    static void deleteTree(Path dir) {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
