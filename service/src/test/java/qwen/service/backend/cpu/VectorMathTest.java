package qwen.service.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import org.junit.jupiter.api.Test;

/** {@link VectorMath#exp}: close to Math.exp, the vector and scalar forms equal bit for bit, and its clamped ends. */
class VectorMathTest {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    @Test
    void expIsWithinOneUlpOfMathExpAcrossItsRange() {
        SplittableRandom random = new SplittableRandom(3);
        double worst = 0;
        for (int i = 0; i < 2_000_000; i++) {
            float x = i < 1_000_000 ? VectorMath.LO + (VectorMath.HI - VectorMath.LO) * i / 1_000_000f
                    : (float) random.nextDouble(-20, 20);
            double exact = Math.exp(x);
            float got = VectorMath.exp(x);
            worst = Math.max(worst, Math.abs(got - exact) / Math.ulp((float) exact));
        }
        System.out.printf("VectorMath.exp: worst error %.2f ulp%n", worst);
        assertTrue(worst <= 1, "worst error " + worst + " ulp");
    }

    @Test
    void theVectorAndScalarFormsGiveTheSameBits() {
        SplittableRandom random = new SplittableRandom(5);
        float[] x = new float[F.length() * 4096];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) random.nextDouble(-100, 100);
        }
        x[0] = 0f;
        x[1] = Float.NaN;
        x[2] = Float.NEGATIVE_INFINITY;
        x[3] = Float.POSITIVE_INFINITY;
        float[] y = new float[x.length];
        for (int i = 0; i < x.length; i += F.length()) {
            VectorMath.exp(FloatVector.fromArray(F, x, i)).intoArray(y, i);
        }
        for (int i = 0; i < x.length; i++) {
            assertEquals(Float.floatToRawIntBits(VectorMath.exp(x[i])), Float.floatToRawIntBits(y[i]), "exp(" + x[i] + ")");
        }
    }

    @Test
    void theEnds() {
        assertEquals(1f, VectorMath.exp(0f));
        float least = VectorMath.exp(VectorMath.LO);
        assertTrue(least > 0 && least < 2e-38f && least >= Float.MIN_NORMAL, "e^LO = " + least);
        assertEquals(least, VectorMath.exp(-1000f));
        assertEquals(least, VectorMath.exp(Float.NEGATIVE_INFINITY));
        float most = VectorMath.exp(VectorMath.HI);
        assertTrue(Float.isFinite(most) && most > 1e38f, "e^HI = " + most);
        assertEquals(most, VectorMath.exp(Float.POSITIVE_INFINITY));
        assertTrue(Float.isNaN(VectorMath.exp(Float.NaN)));
    }
}
