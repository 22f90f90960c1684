package qwen.service.sampling;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Chooses tokens for one sequence, as HF transformers does with Qwen's generation config
 * (SPEC 6): repetition penalty over every id seen, then temperature, top-k, top-p, then a draw
 * (or the arg-max). Holds the sequence's seeded generator, so one sampler per sequence.
 */
public final class Sampler {

    /**
     * Logits below the best by more than this many are left out of the first head sorted: at
     * e^-12 of the best token's weight each, they hold a share of the mass only in a vocabulary
     * of about e^12 = 160,000 nearly equal tokens.
     */
    private static final float HEAD_LOGITS = 12f;

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    /**
     * Terms summed in float lanes before the sum moves to double: at most BLOCK / lanes terms a
     * lane, each at most 1, so a block's rounding stays near 1e-6 of its sum.
     */
    private static final int BLOCK = 1024;

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
        float max = max(raw);
        float logSum = logSumExp(raw, max);
        // Greedy decoding without a penalty reads the logits as they are; anything else edits a copy.
        boolean asIs = params.isArgMax() && params.repetitionPenalty() == 1f;
        float[] work = asIs ? raw : raw.clone();
        penalise(work, seen);
        int id;
        if (params.isArgMax()) {
            id = asIs ? firstAt(raw, max) : argMax(work);
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

    /**
     * Top-k then top-p truncation, softmax over what is left, and one draw from it, walking the
     * tokens from the most probable down. Only the head of that order is sorted: the tokens within
     * a few logits of the best ({@link #head}), which hold the top k, the top-p mass, or the draw
     * itself nearly always; the whole vocabulary is sorted only when they do not. The tokens come
     * out in the full sort's order, so the choice is the same; the one difference is that without
     * top-k the softmax total over the vocabulary is summed in index order instead of that order.
     */
    private int draw(float[] work) {
        float max = work[argMax(work)];
        double all = params.topK() == 0 ? expSum(work, max) : 0;   // the softmax total of the whole vocabulary
        double u = random.nextDouble();                       // one number per draw, whichever head decides it
        for (float below = HEAD_LOGITS; ; below *= 4) {
            // Past a gap of 3072 logits, exp underflows to 0 and the whole vocabulary is sorted.
            long[] order = head(work, below > 3072 ? Float.NEGATIVE_INFINITY : max - below);
            int id = draw(work, order, max, all, order.length == work.length, u);
            if (id >= 0) {
                return id;
            }
        }
    }

    /**
     * The draw over {@code order}, the head of the tokens from the most probable down (all of them
     * when {@code whole}); -1 when the head turns out too short to decide.
     *
     * @param all the softmax total of the whole vocabulary (used without top-k)
     * @param u the draw's uniform number in [0, 1)
     */
    private int draw(float[] work, long[] order, float max, double all, boolean whole, double u) {
        int keep = order.length;
        if (params.topK() > 0) {
            if (!whole && keep <= params.topK()) {
                return -1;                                    // the head may not hold the k-th token
            }
            if (params.topK() < keep) {
                float kth = work[index(order[params.topK() - 1])];
                keep = params.topK();
                while (keep < order.length && work[index(order[keep])] >= kth) {
                    keep++;                                   // ties with the k-th stay
                }
            }
        }
        double[] probs = new double[keep];
        double total = 0;
        for (int i = 0; i < keep; i++) {
            probs[i] = Math.exp(work[index(order[i])] - max);
            total += probs[i];
        }
        if (params.topK() == 0) {
            total = all;                                      // the head's share of the vocabulary is below 1
        }
        if (params.topP() < 1f) {
            // Keep a token while the mass of the more probable ones is below top_p; the top one always stays.
            double before = 0;
            int kept = 0;
            while (kept < keep && (kept == 0 || before < params.topP())) {
                before += probs[kept] / total;
                kept++;
            }
            if (!whole && params.topK() == 0 && before < params.topP()) {
                return -1;                                    // the mass runs on past the head
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
                return index(order[i]);
            }
        }
        // Without truncation the draw may land past the head: a longer head decides it.
        return !whole && params.topK() == 0 && params.topP() == 1f ? -1 : index(order[keep - 1]);
    }

    /**
     * The tokens with a logit of at least {@code from}, sorted as {@link #sortDescending} sorts
     * the whole vocabulary (all of it when {@code from} is -infinity or below every logit).
     */
    private static long[] head(float[] v, float from) {
        int n = 0;
        for (float x : v) {
            if (x >= from) {
                n++;
            }
        }
        if (n == v.length || Float.isInfinite(from)) {
            return sortDescending(v);
        }
        long[] keys = new long[n];
        int k = 0;
        for (int i = 0; i < v.length; i++) {
            if (v[i] >= from) {
                keys[k++] = key(v[i], i);
            }
        }
        Arrays.sort(keys);
        return keys;
    }

    /** Indices sorted by value, highest first, packed as (sortable value bits << 32 | index). */
    private static long[] sortDescending(float[] v) {
        long[] keys = new long[v.length];
        for (int i = 0; i < v.length; i++) {
            keys[i] = key(v[i], i);
        }
        Arrays.sort(keys);
        return keys;
    }

    private static long key(float value, int index) {
        int bits = Float.floatToRawIntBits(value);
        int sortable = bits >= 0 ? bits : bits ^ 0x7fffffff;              // monotone in the float value
        return ((long) ~sortable << 32) | index;                            // ~ turns ascending into descending
    }

    private static int index(long key) {
        return (int) key;
    }

    /** The first index holding {@code value} (the maximum), or the arg-max when none does (NaN logits). */
    static int firstAt(float[] v, float value) {
        int bound = F.loopBound(v.length);
        int i = 0;
        for (; i < bound; i += F.length()) {
            VectorMask<Float> hit = FloatVector.fromArray(F, v, i).eq(value);
            if (hit.anyTrue()) {
                return i + hit.firstTrue();
            }
        }
        for (; i < v.length; i++) {
            if (v[i] == value) {
                return i;
            }
        }
        return argMax(v);
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

    /**
     * log(sum(exp(v))), computed stably: exp(v - max(v)) in vector lanes (one Math.exp at a time
     * over the vocabulary took a millisecond a token, a fifth of a GPU decode step), summed in
     * float lanes over blocks of {@link #BLOCK} and the block sums in double.
     */
    static float logSumExp(float[] v) {
        return logSumExp(v, max(v));
    }

    /** log(sum(exp(v))) given {@code max}, the largest of v. */
    static float logSumExp(float[] v, float max) {
        return (float) (max + Math.log(expSum(v, max)));
    }

    /** The largest value of v (NaN when v holds one). */
    static float max(float[] v) {
        int bound = F.loopBound(v.length);
        FloatVector top = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
        int i = 0;
        for (; i < bound; i += F.length()) {
            top = top.max(FloatVector.fromArray(F, v, i));
        }
        float max = top.reduceLanes(VectorOperators.MAX);
        for (; i < v.length; i++) {
            max = Math.max(max, v[i]);
        }
        return max;
    }

    /** sum(exp(v - max)) in vector lanes, over blocks of {@link #BLOCK} in float and across blocks in double. */
    static double expSum(float[] v, float max) {
        int bound = F.loopBound(v.length);
        FloatVector shift = FloatVector.broadcast(F, max);
        double sum = 0;
        int i = 0;
        while (i < bound) {
            FloatVector acc = FloatVector.zero(F);
            for (int end = Math.min(bound, i + BLOCK); i < end; i += F.length()) {
                acc = acc.add(FloatVector.fromArray(F, v, i).sub(shift).lanewise(VectorOperators.EXP));
            }
            sum += acc.reduceLanes(VectorOperators.ADD);
        }
        for (; i < v.length; i++) {
            sum += Math.exp(v[i] - max);
        }
        return sum;
    }

    /** The n largest raw logits as log-probabilities, best first. */
    static List<TokenLogprob> top(float[] raw, float logSum, int n) {
        if (n == 0) {
            return List.of();
        }
        int[] best = new int[n];
        int size = 0;
        int bound = F.loopBound(raw.length);
        for (int i = 0; i < raw.length; i++) {
            // Once n are held, a block of lanes none of which beats the n-th best is passed over whole.
            if (size == n && i % F.length() == 0 && i < bound
                    && !FloatVector.fromArray(F, raw, i).compare(VectorOperators.GT, raw[best[n - 1]]).anyTrue()) {
                i += F.length() - 1;
                continue;
            }
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
