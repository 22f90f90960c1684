package qwen.service.backend.cpu;

/**
 * Rotary-embedding angles (SPEC 3.5) for one rotary base, computed in f32 the way HF's
 * {@code RotaryEmbedding} does: inv_freq[i] = 1 / base^(2i / headDim) (an f32 power of the
 * f32 base), angle = (float) pos * inv_freq[i] (an f32 multiply), then the cosine and sine of
 * that f32 angle. Also the dynamic-NTK and logn rules that choose the base and scale queries
 * for long contexts.
 */
public final class RopeTable {

    private RopeTable() {
    }

    /**
     * inv_freq[i] = 1 / base^(2i / headDim) for i < headDim / 2: the f32 power of the f32 base
     * with an f32 exponent, then an f32 reciprocal, as HF computes it.
     *
     * @param base rotary base, e.g. 10000 or {@link #ntkBase}'s result
     * @param headDim head width, even
     */
    public static float[] invFreq(double base, int headDim) {
        if (headDim <= 0 || headDim % 2 != 0) {
            throw new IllegalArgumentException("headDim must be positive and even, got " + headDim);
        }
        float[] invFreq = new float[headDim / 2];
        float fbase = (float) base;
        for (int i = 0; i < invFreq.length; i++) {
            float exponent = (float) (2 * i) / headDim;
            invFreq[i] = 1f / (float) Math.pow(fbase, exponent);
        }
        return invFreq;
    }

    /**
     * Fills cos and sin [tokens * headDim / 2]: row t holds cos/sin of (float) (startPos + t) *
     * inv_freq[i], the layout {@link Kernels#rope} reads.
     */
    public static void fill(double base, int headDim, int startPos, int tokens, float[] cos, float[] sin) {
        float[] invFreq = invFreq(base, headDim);
        int half = invFreq.length;
        for (int t = 0; t < tokens; t++) {
            float pos = startPos + t;
            for (int i = 0; i < half; i++) {
                float angle = pos * invFreq[i];
                cos[t * half + i] = (float) Math.cos(angle);
                sin[t * half + i] = (float) Math.sin(angle);
            }
        }
    }

    /**
     * The dynamic-NTK alpha chosen at prefill from the prefill length: context_value =
     * log2(L / seqLength) + 1; alpha = max(2^ceil(context_value) - 1, 1), so 1 for
     * L <= seqLength, 3 up to 2 * seqLength, 7 up to 4 * seqLength. Double math as in HF's
     * Python ({@code math.log(x, 2)}).
     */
    public static double ntkAlpha(int prefillLength, int seqLength) {
        double contextValue = Math.log((double) prefillLength / seqLength) / Math.log(2) + 1;
        return Math.max(Math.pow(2, Math.ceil(contextValue)) - 1, 1);
    }

    /** The rotary base for an NTK alpha: base * alpha^(headDim / (headDim - 2)). */
    public static double ntkBase(double base, double alpha, int headDim) {
        return base * Math.pow(alpha, (double) headDim / (headDim - 2));
    }

    /**
     * The logn query scale for absolute position pos: ln(pos + 1) / ln(seqLength) when
     * pos + 1 > seqLength, else 1, rounded to f32 like HF's table. Applied only while the total
     * key length exceeds seqLength (SPEC 3.5).
     */
    public static float lognFactor(int pos, int seqLength) {
        int i = pos + 1;
        return i > seqLength ? (float) (Math.log(i) / Math.log(seqLength)) : 1f;
    }
}
