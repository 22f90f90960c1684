package qwen.service.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** {@link RopeTable} against the numbers of SPEC 3.5 and HF's f32 formulas. */
class RopeTableTest {

    @ParameterizedTest(name = "L = {0} -> alpha {1}")
    @CsvSource({
        "1, 1", "100, 1", "8191, 1", "8192, 1", "8193, 3", "12000, 3", "16384, 3", "16385, 7",
        "32768, 7", "32769, 15", "65536, 15"})
    void ntkAlphaTable(int prefillLength, double alpha) {
        assertEquals(alpha, RopeTable.ntkAlpha(prefillLength, 8192));
    }

    @Test
    void ntkBaseTable() {
        assertEquals(10000.0, RopeTable.ntkBase(10000, 1, 128));
        assertEquals(30527.737, RopeTable.ntkBase(10000, 3, 128), 1e-3);
        assertEquals(72195.86, RopeTable.ntkBase(10000, 7, 128), 1e-2);
        assertEquals(156588.32, RopeTable.ntkBase(10000, 15, 128), 1e-2);
    }

    /**
     * SPEC's figures are the double ratios to 8 significant digits (5e-8); the table entry is
     * that ratio rounded to f32 (half an ulp near 1 is 6e-8).
     */
    @Test
    void lognFactorExamples() {
        assertEquals(1f, RopeTable.lognFactor(0, 8192));
        assertEquals(1f, RopeTable.lognFactor(8191, 8192));
        assertEquals(1.0000135, RopeTable.lognFactor(8192, 8192), 1.1e-7);
        assertEquals(1.0769231, RopeTable.lognFactor(16383, 8192), 1.1e-7);
        assertEquals(1.1538428, RopeTable.lognFactor(32766, 8192), 1.1e-7);
        assertEquals((float) (Math.log(16384) / Math.log(8192)), RopeTable.lognFactor(16383, 8192));
    }

    @Test
    void invFreqIsTheF32PowerOfTheBase() {
        float[] inv = RopeTable.invFreq(10000, 128);
        assertEquals(64, inv.length);
        assertEquals(1f, inv[0]);
        for (int i = 0; i < 64; i++) {
            assertEquals(Math.pow(10000, -i / 64.0), inv[i], 2e-7 * Math.pow(10000, -i / 64.0), "i = " + i);
            assertEquals(1f / (float) Math.pow(10000f, (float) (2 * i) / 128), inv[i]);
        }
    }

    @Test
    void fillRowsArePositionsTimesInvFreq() {
        int half = 64;
        int start = 8190;
        int tokens = 4;
        float[] cos = new float[tokens * half];
        float[] sin = new float[tokens * half];
        double base = RopeTable.ntkBase(10000, 3, 128);
        RopeTable.fill(base, 128, start, tokens, cos, sin);
        float[] inv = RopeTable.invFreq(base, 128);
        for (int t = 0; t < tokens; t++) {
            for (int i = 0; i < half; i++) {
                float angle = (float) (start + t) * inv[i];     // f32 multiply, as torch.outer
                assertEquals((float) Math.cos(angle), cos[t * half + i]);
                assertEquals((float) Math.sin(angle), sin[t * half + i]);
            }
        }
        float[] c0 = new float[half];
        float[] s0 = new float[half];
        RopeTable.fill(10000, 128, 0, 1, c0, s0);
        for (int i = 0; i < half; i++) {
            assertEquals(1f, c0[i]);
            assertEquals(0f, s0[i]);
        }
    }
}
