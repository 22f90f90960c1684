package qwen.service.sampling;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The sampler sorts only the head of the vocabulary (the tokens within a few logits of the best),
 * and the whole of it only when the head cannot decide. Its choices must be those of the plain
 * algorithm, which sorts every token, applies top-k (ties kept) and top-p, and walks the sorted
 * tokens with the draw: over thousands of random cases, sharp and flat distributions, ties,
 * masked (-infinity) logits, every truncation and none, the same token every time.
 */
class HeadSortTest {

    @Test
    void choosesWhatSortingTheWholeVocabularyChooses() {
        SplittableRandom rnd = new SplittableRandom(42);
        int[] topKs = {0, 0, 1, 3, 40, 2000};
        float[] topPs = {1f, 0.8f, 0.95f, 0.3f, 0.999f};
        float[] spreads = {0.05f, 1f, 2.3f, 6f, 30f};
        int cases = 0;
        for (int c = 0; c < 3000; c++) {
            int vocab = 500 + rnd.nextInt(3000);
            float spread = spreads[c % spreads.length];
            float[] logits = new float[vocab];
            boolean ties = c % 7 == 0;
            for (int i = 0; i < vocab; i++) {
                float x = (float) (rnd.nextGaussian() * spread);
                logits[i] = ties ? Math.round(x) : x;
            }
            if (c % 11 == 0) {
                for (int i = 0; i < vocab; i += 3) {
                    logits[i] = Float.NEGATIVE_INFINITY;          // masked tokens
                }
            }
            float temperature = c % 3 == 0 ? 1f : 0.7f;
            int topK = topKs[(c / 5) % topKs.length];
            float topP = topPs[c % topPs.length];
            long seed = rnd.nextLong();
            SamplingParams p = new SamplingParams(false, temperature, topK, topP, 1f, seed, 0);
            int got = new Sampler(p).next(logits, new SeenTokens(vocab)).id();
            assertEquals(sortAll(logits, p, new SplittableRandom(seed).nextDouble()), got,
                    "case " + c + ": vocab " + vocab + ", spread " + spread + ", top_k " + topK + ", top_p " + topP);
            cases++;
        }
        assertEquals(3000, cases);
    }

    /**
     * A few tokens a dozen logits above a bulk of the whole vocabulary: the bulk, outside the
     * first head, then holds a fifth to a half of the mass, so top-p and an untruncated draw must
     * reach past that head.
     */
    @Test
    void aHeavyTailBeyondTheHeadIsReachedToo() {
        SplittableRandom rnd = new SplittableRandom(7);
        int vocab = 151936;
        float[] leads = {12.6f, 12.8f, 13f, 13.5f};
        float[] topPs = {1f, 0.8f, 0.95f};
        for (int c = 0; c < 24; c++) {
            float[] logits = new float[vocab];
            for (int i = 0; i < vocab; i++) {
                logits[i] = (float) (rnd.nextGaussian() * 0.1);
            }
            for (int j = 0; j < 1 + c % 3; j++) {
                logits[rnd.nextInt(vocab)] = leads[c % leads.length] - 0.3f * j;
            }
            SamplingParams p = new SamplingParams(false, 1f, 0, topPs[c % topPs.length], 1f, rnd.nextLong(), 0);
            int got = new Sampler(p).next(logits, new SeenTokens(vocab)).id();
            assertEquals(sortAll(logits, p, new SplittableRandom(p.seed()).nextDouble()), got, "case " + c);
        }
    }

    /** The plain algorithm (SPEC 6): every token sorted, then top-k, top-p and the draw u. */
    private static int sortAll(float[] logits, SamplingParams p, double u) {
        float[] work = logits.clone();
        if (p.temperature() != 1f) {
            for (int i = 0; i < work.length; i++) {
                work[i] /= p.temperature();
            }
        }
        Integer[] order = new Integer[work.length];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> work[a] != work[b] ? Float.compare(work[b], work[a]) : Integer.compare(a, b));
        int keep = order.length;
        if (p.topK() > 0 && p.topK() < keep) {
            float kth = work[order[p.topK() - 1]];
            keep = p.topK();
            while (keep < order.length && work[order[keep]] >= kth) {
                keep++;
            }
        }
        float max = work[order[0]];
        double[] probs = new double[keep];
        double total = 0;
        for (int i = 0; i < keep; i++) {
            probs[i] = Math.exp(work[order[i]] - max);
            total += probs[i];
        }
        if (p.topP() < 1f) {
            double before = 0;
            int kept = 0;
            while (kept < keep && (kept == 0 || before < p.topP())) {
                before += probs[kept] / total;
                kept++;
            }
            keep = kept;
            total = 0;
            for (int i = 0; i < keep; i++) {
                total += probs[i];
            }
        }
        double r = u * total;
        for (int i = 0; i < keep; i++) {
            r -= probs[i];
            if (r < 0) {
                return order[i];
            }
        }
        return order[keep - 1];
    }
}
