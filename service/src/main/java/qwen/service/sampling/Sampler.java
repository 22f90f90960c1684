package qwen.service.sampling;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Chooses tokens for one sequence, as HF transformers does with Qwen's generation config
 * (SPEC 6): repetition penalty over every id seen, then temperature, top-k, top-p, then a draw
 * (or the arg-max). Holds the sequence's seeded generator, so one sampler per sequence.
 */
public final class Sampler {

    private final SamplingParams params;
    private final SplittableRandom random;

    public Sampler(SamplingParams params) {
        this.params = params;
        this.random = new SplittableRandom(params.seed());
    }

    public SamplingParams params() {
        return params;
    }

    /**
     * Picks the next token. {@code logits} is left unchanged.
     *
     * @param logits raw logits of the last position, one per vocabulary row
     * @param seen every token id of the sequence so far (prompt and generated); each distinct id
     *     is penalised once
     */
    public Sample next(float[] logits, SeenTokens seen) {
        float[] raw = logits;
        float logSum = logSumExp(raw);
        float[] work = raw.clone();
        penalise(work, seen);
        int id;
        if (params.isArgMax()) {
            id = argMax(work);
        } else {
            if (params.temperature() != 1f) {
                float t = params.temperature();
                for (int i = 0; i < work.length; i++) {
                    work[i] /= t;
                }
            }
            id = draw(work);
        }
        return new Sample(id, raw[id] - logSum, top(raw, logSum, params.topLogprobs()));
    }

    private void penalise(float[] work, SeenTokens seen) {
        float p = params.repetitionPenalty();
        if (p == 1f) {
            return;
        }
        seen.forEachDistinct(id -> {
            if (id < work.length) {
                float s = work[id];
                work[id] = s < 0 ? s * p : s / p;
            }
        });
    }

    /** Top-k then top-p truncation, softmax over what is left, and one draw from it. */
    private int draw(float[] work) {
        long[] order = sortDescending(work);
        int keep = order.length;
        if (params.topK() > 0 && params.topK() < keep) {
            float kth = work[index(order[params.topK() - 1])];
            keep = params.topK();
            while (keep < order.length && work[index(order[keep])] >= kth) {
                keep++;                                                     // ties with the k-th stay
            }
        }
        float max = work[index(order[0])];
        double[] probs = new double[keep];
        double total = 0;
        for (int i = 0; i < keep; i++) {
            probs[i] = Math.exp(work[index(order[i])] - max);
            total += probs[i];
        }
        if (params.topP() < 1f) {
            // Keep a token while the mass of the more probable ones is below top_p; the top one always stays.
            double before = 0;
            int kept = 0;
            while (kept < keep && (kept == 0 || before < params.topP())) {
                before += probs[kept] / total;
                kept++;
            }
            keep = kept;
            total = 0;
            for (int i = 0; i < keep; i++) {
                total += probs[i];
            }
        }
        double r = random.nextDouble() * total;
        for (int i = 0; i < keep; i++) {
            r -= probs[i];
            if (r < 0) {
                return index(order[i]);
            }
        }
        return index(order[keep - 1]);
    }

    /** Indices sorted by value, highest first, packed as (sortable value bits << 32 | index). */
    private static long[] sortDescending(float[] v) {
        long[] keys = new long[v.length];
        for (int i = 0; i < v.length; i++) {
            int bits = Float.floatToRawIntBits(v[i]);
            int sortable = bits >= 0 ? bits : bits ^ 0x7fffffff;          // monotone in the float value
            keys[i] = ((long) ~sortable << 32) | i;                         // ~ turns ascending into descending
        }
        Arrays.sort(keys);
        return keys;
    }

    private static int index(long key) {
        return (int) key;
    }

    static int argMax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }

    /** log(sum(exp(v))), computed stably. */
    static float logSumExp(float[] v) {
        float max = Float.NEGATIVE_INFINITY;
        for (float x : v) {
            max = Math.max(max, x);
        }
        double sum = 0;
        for (float x : v) {
            sum += Math.exp(x - max);
        }
        return (float) (max + Math.log(sum));
    }

    /** The n largest raw logits as log-probabilities, best first. */
    static List<TokenLogprob> top(float[] raw, float logSum, int n) {
        if (n == 0) {
            return List.of();
        }
        int[] best = new int[n];
        int size = 0;
        for (int i = 0; i < raw.length; i++) {
            if (size < n || raw[i] > raw[best[size - 1]]) {
                int at = size < n ? size++ : size - 1;
                while (at > 0 && raw[best[at - 1]] < raw[i]) {
                    best[at] = best[at - 1];
                    at--;
                }
                best[at] = i;
            }
        }
        List<TokenLogprob> out = new ArrayList<>(size);
        for (int i = 0; i < size; i++) {
            out.add(new TokenLogprob(best[i], raw[best[i]] - logSum));
        }
        return out;
    }
}
