package qwen.service.backend.cpu;

import static jdk.incubator.vector.VectorOperators.LSHL;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * e^x in f32 from exact lane-wise operations only (FMAs, adds, an integer add to the exponent), in
 * a vector form and a scalar twin that give the same bits per element. SiLU used lanewise(EXP) in
 * the vector lanes and Math.exp in the tail, which differ in the last place: an element's value
 * then depended on where a thread's range ended, and lanewise(EXP) also rounds otherwise when
 * interpreted than when compiled.
 *
 * <p>Cephes' expf: x = k ln2 + r with |r| <= ln2 / 2 (ln2 in two parts), e^r by a degree-6
 * polynomial, 2^k added to the exponent bits; within 1 ulp of e^x (checked against Math.exp in
 * {@code VectorMathTest}). x is clamped to [{@link #LO}, {@link #HI}] first: e^-87 (1.6e-38) is just
 * above the smallest normal float, e^88 just below the largest, and SiLU cannot tell them from 0
 * and infinity.
 */
final class VectorMath {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final float LO = -87f;
    static final float HI = 88f;
    private static final float LOG2E = 1.44269504088896341f;
    /** 1.5 * 2^23: adding it rounds a float of magnitude below 2^22 to an integer, kept in the low bits. */
    private static final float ROUND = 12582912f;
    private static final int ROUND_BITS = Float.floatToRawIntBits(ROUND);
    private static final float LN2_HI = 0.693359375f;
    private static final float LN2_LO = -2.12194440e-4f;
    private static final float P0 = 1.9875691500e-4f;
    private static final float P1 = 1.3981999507e-3f;
    private static final float P2 = 8.3334519073e-3f;
    private static final float P3 = 4.1665795894e-2f;
    private static final float P4 = 1.6666665459e-1f;
    private static final float P5 = 5.0000001201e-1f;

    private VectorMath() {
    }

    static FloatVector exp(FloatVector x) {
        FloatVector c = x.max(LO).min(HI);
        FloatVector t = c.fma(LOG2E, ROUND);
        FloatVector k = t.sub(ROUND);
        FloatVector r = k.fma(FloatVector.broadcast(F, -LN2_HI), c);
        r = k.fma(FloatVector.broadcast(F, -LN2_LO), r);
        FloatVector p = r.fma(P0, P1);
        p = p.fma(r, FloatVector.broadcast(F, P2));
        p = p.fma(r, FloatVector.broadcast(F, P3));
        p = p.fma(r, FloatVector.broadcast(F, P4));
        p = p.fma(r, FloatVector.broadcast(F, P5));
        FloatVector y = p.fma(r.mul(r), r).add(1f);
        IntVector e = t.reinterpretAsInts().sub(ROUND_BITS).lanewise(LSHL, 23);
        return y.reinterpretAsInts().add(e).reinterpretAsFloats();
    }

    /** The same operations on one value. */
    static float exp(float x) {
        float c = Math.min(Math.max(x, LO), HI);
        float t = Math.fma(c, LOG2E, ROUND);
        float k = t - ROUND;
        float r = Math.fma(k, -LN2_HI, c);
        r = Math.fma(k, -LN2_LO, r);
        float p = Math.fma(r, P0, P1);
        p = Math.fma(p, r, P2);
        p = Math.fma(p, r, P3);
        p = Math.fma(p, r, P4);
        p = Math.fma(p, r, P5);
        float y = Math.fma(p, r * r, r) + 1f;
        int e = (Float.floatToRawIntBits(t) - ROUND_BITS) << 23;
        return Float.intBitsToFloat(Float.floatToRawIntBits(y) + e);
    }
}
