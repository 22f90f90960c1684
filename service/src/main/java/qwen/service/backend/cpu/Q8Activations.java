package qwen.service.backend.cpu;

import static jdk.incubator.vector.VectorOperators.ABS;
import static jdk.incubator.vector.VectorOperators.MAX;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Activations quantized to 8-bit blocks for the Q8_0 / Q4_0 dot products of {@link QuantDot}:
 * each run of 32 values of a token's row gets the scale d = max|x| / 127 and the quants
 * q = round(x / d) in [-127, 127] (llama.cpp's q8_0 activations, with an f32 scale). So
 * |x - d q| <= d / 2 for every value, the bound the kernel tests hold the fast matmul to against
 * the f32 reference.
 *
 * <p>The quants are kept widened to shorts, the lanes the kernels multiply in. The buffers are
 * reused from call to call; one instance serves one calling thread.
 */
final class Q8Activations {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    /** Lanes of a {@link #spread} quant: one per row of a {@link qwen.service.model.RowGroups} group. */
    static final VectorSpecies<Short> SPREAD = ShortVector.SPECIES_256;

    private short[] quants = new short[0];
    private float[] scales = new float[0];
    private int[] sums = new int[0];
    private short[] spread = new short[0];
    private float[] lowOffsets = new float[0];

    /** Quantizes tokens rows of width cols (a multiple of 32) of x; returns this. */
    Q8Activations quantize(float[] x, int tokens, int cols) {
        int n = tokens * cols;
        int blocks = n / 32;
        if (quants.length < n) {
            quants = new short[n];
        }
        if (scales.length < blocks) {
            scales = new float[blocks];
            sums = new int[blocks];
        }
        for (int b = 0; b < blocks; b++) {
            int o = 32 * b;
            float amax = FloatVector.fromArray(F, x, o).lanewise(ABS)
                    .max(FloatVector.fromArray(F, x, o + 8).lanewise(ABS))
                    .max(FloatVector.fromArray(F, x, o + 16).lanewise(ABS))
                    .max(FloatVector.fromArray(F, x, o + 24).lanewise(ABS)).reduceLanes(MAX);
            float d = amax / 127f;
            float id = d != 0 ? 1f / d : 0f;
            scales[b] = d;
            int sum = 0;
            for (int i = o; i < o + 32; i++) {
                int q = Math.round(x[i] * id);
                quants[i] = (short) q;
                sum += q;
            }
            sums[b] = sum;
        }
        return this;
    }

    /**
     * For the row-group kernel ({@link GroupDot}): every quant of the last {@link #quantize} call
     * repeated over the {@link #SPREAD} lanes (quant i at spread()[16 * i ..]), and per block
     * 8 * the sum of its first 16 quants (what the group kernel's unsigned low nibbles add too much).
     * Returns this.
     */
    Q8Activations spread(int tokens, int cols) {
        int n = tokens * cols;
        int lanes = SPREAD.length();
        if (spread.length < n * lanes) {
            spread = new short[n * lanes];
            lowOffsets = new float[n / 32];
        }
        for (int i = 0; i < n; i++) {
            ShortVector.broadcast(SPREAD, quants[i]).intoArray(spread, lanes * i);
        }
        for (int b = 0; b < n / 32; b++) {
            int low = 0;
            for (int i = 32 * b; i < 32 * b + 16; i++) {
                low += quants[i];
            }
            lowOffsets[b] = 8 * low;
        }
        return this;
    }

    /** The quants repeated over 16 lanes ({@link #spread}). */
    short[] spreadQuants() {
        return spread;
    }

    /** Per block, 8 * the sum of its first 16 quants ({@link #spread}). */
    float[] lowOffsets() {
        return lowOffsets;
    }

    /** Quant i of the last {@link #quantize} call (token t's value c at t * cols + c). */
    short[] quants() {
        return quants;
    }

    /** Sum of the quants of block b (Q4_0 subtracts 8 times it per block). */
    int[] sums() {
        return sums;
    }

    /** Scale of block b (token t's block k at t * cols / 32 + k). */
    float[] scales() {
        return scales;
    }
}
