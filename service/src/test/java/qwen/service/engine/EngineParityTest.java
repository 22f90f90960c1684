package qwen.service.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.api.Test;
import qwen.service.model.CheckpointLoader;
import qwen.service.model.DType;
import qwen.service.model.LayerRange;
import qwen.service.model.RandomCheckpoint;
import qwen.service.model.ShardWeights;
import qwen.service.sampling.Sample;
import qwen.service.sampling.SamplingParams;
import qwen.service.sampling.TokenLogprob;

/**
 * The engine's greedy continuations against the scalar kernels and against an independent
 * double-precision reference ({@link ReferenceQwen}), on checkpoints of several shapes and dtypes,
 * single-file and sharded, including widths that are not multiples of the vector width.
 */
class EngineParityTest {

    /** Logprobs of the f32 engine against the double reference: f32 rounding through a few layers. */
    private static final double LOGPROB_TOLERANCE = 2e-3;

    @TempDir
    Path tmp;

    static List<RandomCheckpoint> shapes() {
        return List.of(
                new RandomCheckpoint(64, 3, 4, 96, 512, 256, DType.BF16, 1, 11, null),
                new RandomCheckpoint(40, 2, 5, 70, 301, 256, DType.F32, 3, 12, null),   // widths not multiples of 8
                new RandomCheckpoint(48, 2, 4, 52, 257, 256, DType.F16, 2, 13, null),   // head dim 12
                new RandomCheckpoint(128, 2, 2, 200, 1000, 256, DType.BF16, 2, 14, null));
    }

    @ParameterizedTest
    @MethodSource("shapes")
    void vectorScalarAndReferenceAgreeOnGreedyContinuations(RandomCheckpoint shape) throws Exception {
        Path dir = shape.writeTo(tmp.resolve("m"));
        int[] prompt = new SplittableRandom(shape.seed()).ints(9, 0, shape.vocabSize()).toArray();
        Generator.Result fast = generate(dir, EngineOptions.KernelSet.VECTOR, prompt, 12);
        Generator.Result scalar = generate(dir, EngineOptions.KernelSet.SCALAR, prompt, 12);
        assertArrayEquals(scalar.ids(), fast.ids(), "vector kernels must continue exactly as the scalar reference");
        assertMatchesReference(dir, prompt, prompt.length, fast);
    }

    @Test
    void promptLongerThanSeqLengthUsesDynamicNtkAndLognAndMatchesReference() throws Exception {
        // seq_length 16 and a 40-token prompt: NTK alpha = 2^ceil(log2(40/16) + 1) - 1 = 7, logn past 16.
        RandomCheckpoint shape = new RandomCheckpoint(64, 2, 4, 96, 512, 16, DType.BF16, 1, 21, null);
        Path dir = shape.writeTo(tmp.resolve("ntk"));
        int[] prompt = new SplittableRandom(5).ints(40, 0, 512).toArray();
        Generator.Result fast = generate(dir, EngineOptions.KernelSet.VECTOR, prompt, 8);
        Generator.Result scalar = generate(dir, EngineOptions.KernelSet.SCALAR, prompt, 8);
        assertArrayEquals(scalar.ids(), fast.ids());
        assertMatchesReference(dir, prompt, prompt.length, fast);

        // Control: with NTK and logn switched off the same prompt gives other logprobs, so both were in play.
        Path config = dir.resolve("config.json");
        Files.writeString(config, Files.readString(config)
                .replaceAll("\"use_dynamic_ntk\"\\s*:\\s*true", "\"use_dynamic_ntk\": false")
                .replaceAll("\"use_logn_attn\"\\s*:\\s*true", "\"use_logn_attn\": false"));
        Generator.Result plain = generate(dir, EngineOptions.KernelSet.VECTOR, prompt, 1);
        assertNotEquals(fast.samples().getFirst().top().getFirst().logprob(),
                plain.samples().getFirst().top().getFirst().logprob(), 1e-4);
    }

    @Test
    void aChunkedPrefillPastSeqLengthMatchesOneChunkWhenTheChunksCarryThePromptLength() {
        RandomCheckpoint shape = new RandomCheckpoint(64, 2, 4, 96, 512, 16, DType.BF16, 1, 22, null);
        Path dir = shape.writeTo(tmp.resolve("chunked"));
        int[] prompt = new SplittableRandom(6).ints(40, 0, 512).toArray();
        Generator.Result whole = generate(dir, EngineOptions.KernelSet.VECTOR, prompt, 1);
        SamplingParams greedy = SamplingParams.greedy(1);
        try (ShardEngine e = open(dir, null)) {
            StepOutput last = null;
            for (int start = 0; start < prompt.length; start += 8) {
                int[] chunk = java.util.Arrays.copyOfRange(prompt, start, start + 8);
                boolean final_ = start + 8 == prompt.length;
                last = e.step(List.of(new StepInput("c", start, chunk, null, prompt.length, final_, greedy))).getFirst();
            }
            assertEquals(whole.ids()[0], last.sample().id());
            assertEquals(whole.samples().getFirst().logprob(), last.sample().logprob(), 1e-4);
        }
    }

    @Test
    void layersSplitAcrossTwoEnginesEqualTheWholeModel() throws Exception {
        RandomCheckpoint shape = new RandomCheckpoint(64, 4, 4, 96, 512, 256, DType.BF16, 2, 31, null);
        Path dir = shape.writeTo(tmp.resolve("split"));
        int[] prompt = new SplittableRandom(3).ints(7, 0, 512).toArray();
        Generator.Result whole = generate(dir, EngineOptions.KernelSet.VECTOR, prompt, 10);
        SamplingParams greedy = SamplingParams.greedy(3);
        List<Integer> ids = new ArrayList<>();
        try (ShardEngine first = open(dir, "0-1"); ShardEngine second = open(dir, "2-3")) {
            int[] next = prompt;
            int pos = 0;
            for (int step = 0; step < 10; step++) {
                StepOutput h = first.step(List.of(new StepInput("s", pos, next, null, 0, true, greedy))).getFirst();
                assertEquals(null, h.sample(), "the first shard returns hidden rows, not tokens");
                StepOutput out = second.step(List.of(new StepInput("s", pos, next, h.hidden(), 0, true, greedy))).getFirst();
                pos += next.length;
                ids.add(out.sample().id());
                next = new int[] {out.sample().id()};
            }
        }
        assertArrayEquals(whole.ids(), ids.stream().mapToInt(Integer::intValue).toArray());
    }

    private void assertMatchesReference(Path dir, int[] prompt, int prefillLength, Generator.Result result) {
        try (ShardWeights weights = CheckpointLoader.load(dir, LayerRange.whole(modelLayers(dir)))) {
            ReferenceQwen ref = new ReferenceQwen(weights);
            int[] seq = prompt.clone();
            for (int step = 0; step < result.ids().length; step++) {
                double[] logits = ref.lastLogits(seq, prefillLength);
                int best = argMax(logits);
                assertEquals(best, result.ids()[step], "greedy token " + step + " differs from the reference");
                double logSum = logSumExp(logits);
                Sample s = result.samples().get(step);
                for (TokenLogprob t : s.top()) {
                    assertEquals(logits[t.id()] - logSum, t.logprob(), LOGPROB_TOLERANCE,
                            "logprob of token " + t.id() + " at step " + step);
                }
                seq = java.util.Arrays.copyOf(seq, seq.length + 1);
                seq[seq.length - 1] = best;
            }
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    private static int modelLayers(Path dir) {
        return qwen.service.model.ModelDirectory.open(dir).config().numLayers();
    }

    private static Generator.Result generate(Path dir, EngineOptions.KernelSet kernels, int[] prompt, int n) {
        try (ShardEngine engine = ShardEngine.open(new EngineOptions(dir, null, kernels, 2, 64L << 20))) {
            return Generator.generate(engine, prompt, n, SamplingParams.greedy(5), Set.of(), id -> { });
        }
    }

    private static ShardEngine open(Path dir, String layers) {
        return ShardEngine.open(new EngineOptions(dir, layers, EngineOptions.KernelSet.VECTOR, 2, 64L << 20));
    }

    private static int argMax(double[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }

    private static double logSumExp(double[] v) {
        double max = v[argMax(v)];
        double s = 0;
        for (double x : v) {
            s += Math.exp(x - max);
        }
        return max + Math.log(s);
    }
}
