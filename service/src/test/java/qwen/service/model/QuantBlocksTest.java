package qwen.service.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The Q8_0 and Q4_0 encoders and the reference decoder: a decoded weight is within half a
 * quantization step (d / 2) of its source (a whole step where Q4_0 clamps), the block's largest magnitude is exact up to the f16
 * rounding of d, and the bytes follow the documented layout (f16 scale first; Q4_0 element i in
 * the low nibble of byte i, element i + 16 in its high nibble, stored as q + 8).
 */
class QuantBlocksTest {

    private static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q8_0", "Q4_0", "Q4_G128"})
    void decodedWeightsAreWithinHalfAStep(DType type) {
        int rows = 7;
        int cols = 384;
        Random rnd = new Random(5);
        float[] src = new float[rows * cols];
        for (int i = 0; i < src.length; i++) {
            src[i] = (float) rnd.nextGaussian() * (1 + i % 5);
        }
        MemorySegment data = Arena.ofAuto().allocate(rows * type.rowBytes(cols));
        for (int r = 0; r < rows; r++) {
            QuantBlocks.encode(type, src, r * cols, cols, data, r * type.rowBytes(cols));
        }
        Matrix m = new Matrix("m", type, rows, cols, data);
        for (int r = 0; r < rows; r++) {
            for (int b = 0; b < cols / type.blockSize(); b++) {
                long at = r * type.rowBytes(cols) + (long) b * type.blockBytes();
                float d = Math.abs(Float.float16ToFloat(data.get(LE_SHORT, at)));
                for (int i = 0; i < type.blockSize(); i++) {
                    int c = type.blockSize() * b + i;
                    float w = src[r * cols + c];
                    float got = QuantBlocks.element(m, r, c);
                    // f16 rounding of d moves the grid by up to 2^-11 relative, times |q| <= 127.
                    float slack = d * (type == DType.Q8_0 ? 127 : 8) * 0x1p-11f;
                    // Q4_0's grid (Q4_G128's too) is -8d..7d with the extreme at -8d: a value of the other sign
                    // beyond 7.5d is clamped to 7d (ggml's rule), at most one step away.
                    float step = type != DType.Q8_0 && Math.abs(w) > 7.5f * d ? d : d / 2;
                    assertTrue(Math.abs(got - w) <= step + slack, type + " (" + r + ", " + c + "): " + w + " -> " + got
                            + ", step " + d);
                }
            }
        }
    }

    @org.junit.jupiter.api.Test
    void q4LayoutIsLowNibblesThenHighNibbles() {
        float[] src = new float[32];
        for (int i = 0; i < 32; i++) {
            src[i] = i < 16 ? i - 8 : 7 - (i - 16);  // -8..7 then 7..-8, with -8 the extreme
        }
        MemorySegment data = Arena.ofAuto().allocate(18);
        QuantBlocks.encode(DType.Q4_0, src, 0, 32, data, 0);
        assertEquals(1f, Float.float16ToFloat(data.get(LE_SHORT, 0)));   // max magnitude -8 maps to q = 0: d = -8 / -8
        for (int i = 0; i < 16; i++) {
            int b = data.get(ValueLayout.JAVA_BYTE, 2 + i) & 0xFF;
            assertEquals(i, b & 15, "low nibble " + i);
            assertEquals(15 - i, b >>> 4, "high nibble " + i);
        }
        Matrix m = new Matrix("m", DType.Q4_0, 1, 32, data);
        for (int i = 0; i < 32; i++) {
            assertEquals(src[i], QuantBlocks.element(m, 0, i));
        }
    }

    /** Q4_G128: one f16 d for 128 weights, then four Q4_0 bodies, each 32 weights in Q4_0's order. */
    @org.junit.jupiter.api.Test
    void q4G128IsFourQ4_0BodiesUnderOneScale() {
        float[] src = new float[128];
        for (int i = 0; i < 128; i++) {
            src[i] = (i * 7 % 16) - 8;
        }
        src[77] = -16;                                   // the extreme, in the third part: d = 2
        MemorySegment data = Arena.ofAuto().allocate(66);
        QuantBlocks.encode(DType.Q4_G128, src, 0, 128, data, 0);
        assertEquals(2f, Float.float16ToFloat(data.get(LE_SHORT, 0)));
        Matrix m = new Matrix("m", DType.Q4_G128, 1, 128, data);
        for (int i = 0; i < 128; i++) {
            int part = i / 32;
            int j = i % 32;
            int b = data.get(ValueLayout.JAVA_BYTE, 2 + 16 * part + j % 16) & 0xFF;
            int q = (j < 16 ? b & 15 : b >>> 4) - 8;
            assertEquals(2f * q, QuantBlocks.element(m, 0, i), "element " + i);
            assertEquals(Math.round(src[i] / 2f), q, "quant of element " + i + " = " + src[i]);   // halves round up, as Q4_0
        }
    }
}
