package qwen.service.sampling;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Sampling as SPEC section 6 describes Hugging Face's processors and warpers with Qwen's settings. */
class SamplerTest {

    private static SamplingParams sampling(float temperature, int topK, float topP, float penalty, long seed) {
        return new SamplingParams(false, temperature, topK, topP, penalty, seed, 0);
    }

    @Test
    void repetitionPenaltyDividesPositiveAndMultipliesNegativeLogitsOfSeenIdsOnce() {
        // Token 0 leads, but it was seen: 2.0 / 2 = 1.0 < 1.5, so greedy picks token 1.
        float[] logits = {2.0f, 1.5f, -1f, -0.5f};
        SeenTokens seen = new SeenTokens(4);
        seen.addAll(new int[] {0, 0, 0, 3});
        SamplingParams p = new SamplingParams(true, 1f, 0, 1f, 2f, 0, 0);
        assertEquals(1, new Sampler(p).next(logits, seen).id());
        SeenTokens all = new SeenTokens(4);
        all.addAll(new int[] {0, 1, 3});
        assertEquals(0, new Sampler(p).next(new float[] {2f, 1.9f, 0.95f, -0.5f}, all).id(),
                "2/2 = 1.0 beats 1.9/2 = 0.95 and the unseen 0.95 (first index wins ties)");
    }

    @Test
    void logprobsComeFromTheRawLogitsBeforeAnyPenalty() {
        float[] logits = {3f, 1f, 0f};
        SeenTokens seen = new SeenTokens(3);
        seen.add(0);
        Sample s = new Sampler(new SamplingParams(true, 1f, 0, 1f, 5f, 0, 3)).next(logits, seen);
        double z = Math.log(Math.exp(3) + Math.exp(1) + Math.exp(0));
        assertEquals(0, s.top().getFirst().id());
        assertEquals(3 - z, s.top().getFirst().logprob(), 1e-6);
        assertEquals(1 - z, s.top().get(1).logprob(), 1e-6);
        assertEquals(1, s.id(), "the penalty (3/5 = 0.6 < 1) changed the choice, not the reported logprobs");
        assertEquals(1 - z, s.logprob(), 1e-6);
    }

    /**
     * The normaliser of every logprob, at vocabulary size and at sizes that leave a tail past the
     * vector lanes, against a double-precision sum: within 2e-6, a thousandth of what a logprob's
     * float printing shows. Masked (-inf) logits count for nothing.
     */
    @Test
    void logSumExpMatchesADoubleSumOverTheVocabulary() {
        SplittableRandom r = new SplittableRandom(5);
        for (int n : new int[] {1, 7, 1000, 1025, 151_936}) {
            float[] v = new float[n];
            for (int i = 0; i < n; i++) {
                v[i] = (float) (r.nextGaussian() * 3 + 10);
            }
            if (n > 1) {
                v[n - 1] = Float.NEGATIVE_INFINITY;
            }
            double max = Double.NEGATIVE_INFINITY;
            for (float x : v) {
                max = Math.max(max, x);
            }
            double sum = 0;
            for (float x : v) {
                sum += Math.exp(x - max);
            }
            assertEquals(max + Math.log(sum), Sampler.logSumExp(v), 2e-6 * Math.max(1, Math.abs(max)), "n = " + n);
        }
    }

    /**
     * Greedy choice and top logprobs, which read the logits a vector of lanes at a time and pass
     * over blocks that cannot hold a winner, against a plain scan: the first index wins ties,
     * including ties that straddle lane blocks and the scalar tail, and the top list is ordered by
     * value, then by index.
     */
    @Test
    void greedyAndTopLogprobsMatchAPlainScanWithTiesAcrossLaneBlocks() {
        SplittableRandom r = new SplittableRandom(11);
        for (int n : new int[] {1, 5, 8, 17, 1000, 151_936}) {
            for (int trial = 0; trial < 4; trial++) {
                float[] v = new float[n];
                for (int i = 0; i < n; i++) {
                    v[i] = (float) Math.floor(r.nextGaussian() * 3);      // coarse values: many ties
                }
                int k = 1 + r.nextInt(6);
                Sample s = new Sampler(SamplingParams.greedy(k)).next(v, new SeenTokens(n));
                Integer[] order = new Integer[n];
                for (int i = 0; i < n; i++) {
                    order[i] = i;
                }
                java.util.Arrays.sort(order, (a, b) -> v[a] != v[b] ? Float.compare(v[b], v[a]) : Integer.compare(a, b));
                assertEquals(order[0], s.id(), "n = " + n + ": the first index of the maximum");
                assertEquals(Math.min(k, n), s.top().size());
                for (int i = 0; i < s.top().size(); i++) {
                    assertEquals(order[i], s.top().get(i).id(), "n = " + n + ", top " + k + ", place " + i);
                }
            }
        }
    }

    @Test
    void greedyLeavesTheLogitsAsTheyWere() {
        float[] logits = {0.5f, 2f, -1f};
        float[] before = logits.clone();
        SeenTokens seen = new SeenTokens(3);
        seen.add(1);
        assertEquals(1, new Sampler(new SamplingParams(true, 1f, 0, 1f, 1f, 0, 2)).next(logits, seen).id());
        assertEquals(0, new Sampler(new SamplingParams(true, 1f, 0, 1f, 5f, 0, 2)).next(logits, seen).id(),
                "with a penalty, 2 / 5 falls below 0.5");
        org.junit.jupiter.api.Assertions.assertArrayEquals(before, logits);
    }

    @Test
    void topKKeepsTiesWithTheKthValue() {
        float[] logits = {5f, 4f, 4f, -10f};
        Set<Integer> drawn = draws(logits, sampling(1f, 2, 1f, 1f, 1), 400);
        assertEquals(Set.of(0, 1, 2), drawn, "k = 2 keeps both tokens tied at the 2nd value, and never token 3");
    }

    @Test
    void topPKeepsTheSmallestSetReachingTheMassIncludingTheCrossingToken() {
        // probabilities 0.5, 0.3, 0.15, 0.05: top_p 0.7 keeps {0, 1} (0.5 < 0.7, then 0.8 >= 0.7).
        float[] logits = logitsOf(0.5, 0.3, 0.15, 0.05);
        assertEquals(Set.of(0, 1), draws(logits, sampling(1f, 0, 0.7f, 1f, 2), 500));
        // top_p 0.81: the mass before token 2 is 0.8 < 0.81, so it stays; before token 3 it is 0.95.
        assertEquals(Set.of(0, 1, 2), draws(logits, sampling(1f, 0, 0.81f, 1f, 3), 500));
        // A tiny top_p still keeps the most probable token.
        assertEquals(Set.of(0), draws(logits, sampling(1f, 0, 0.01f, 1f, 4), 100));
    }

    @Test
    void temperatureZeroIsGreedyAndHighTemperatureFlattens() {
        float[] logits = logitsOf(0.6, 0.3, 0.1);
        assertEquals(Set.of(0), draws(logits, sampling(0f, 0, 1f, 1f, 5), 50));
        assertEquals(Set.of(0, 1, 2), draws(logits, sampling(5f, 0, 1f, 1f, 6), 300));
    }

    @Test
    void sameSeedSameTokensAndOtherSeedOtherTokens() {
        float[] logits = new float[1000];
        SplittableRandom r = new SplittableRandom(9);
        for (int i = 0; i < logits.length; i++) {
            logits[i] = (float) r.nextGaussian();
        }
        assertEquals(sequence(logits, 42), sequence(logits, 42));
        assertNotEquals(sequence(logits, 42), sequence(logits, 43));
    }

    @Test
    void drawFrequenciesFollowTheDistribution() {
        float[] logits = logitsOf(0.7, 0.2, 0.1);
        Sampler sampler = new Sampler(sampling(1f, 0, 1f, 1f, 77));
        int[] counts = new int[3];
        for (int i = 0; i < 20000; i++) {
            counts[sampler.next(logits, new SeenTokens(3)).id()]++;
        }
        assertEquals(0.7, counts[0] / 20000.0, 0.02);
        assertEquals(0.2, counts[1] / 20000.0, 0.02);
        assertEquals(0.1, counts[2] / 20000.0, 0.02);
    }

    @Test
    void outOfRangeParametersAreRefusedWithTheirName() {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> sampling(-1f, 0, 1f, 1f, 0))
                .getMessage().contains("temperature"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> sampling(1f, 0, 0f, 1f, 0))
                .getMessage().contains("top_p"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> sampling(1f, 0, 1.5f, 1f, 0))
                .getMessage().contains("top_p"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> sampling(1f, -1, 1f, 1f, 0))
                .getMessage().contains("top_k"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> sampling(1f, 0, 1f, 0f, 0))
                .getMessage().contains("repetition_penalty"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new SamplingParams(true, 1f, 0, 1f, 1f, 0, 21))
                .getMessage().contains("top_logprobs"));
    }

    private static String sequence(float[] logits, long seed) {
        Sampler s = new Sampler(sampling(1f, 0, 1f, 1f, seed));
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < 20; i++) {
            out.append(s.next(logits, new SeenTokens(logits.length)).id()).append(',');
        }
        return out.toString();
    }

    private static Set<Integer> draws(float[] logits, SamplingParams p, int n) {
        Sampler s = new Sampler(p);
        Set<Integer> out = new HashSet<>();
        for (int i = 0; i < n; i++) {
            out.add(s.next(logits, new SeenTokens(logits.length)).id());
        }
        return out;
    }

    private static float[] logitsOf(double... probs) {
        float[] out = new float[probs.length];
        for (int i = 0; i < probs.length; i++) {
            out[i] = (float) Math.log(probs[i]);
        }
        return out;
    }
}
