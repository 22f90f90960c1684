package qwen.service.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The Q5_0, Q4_1, Q5_1, Q4_K, Q5_K and Q6_K encoders and the reference decoder: every decoded weight is within half
 * a quantization step of its source (Q5_0: d / 2, or d where the -16..15 grid clamps; Q4_1 and
 * Q5_1: d / 2, their grid spanning the block's range; Q4_K: half
 * (Q5_K) its sub-block's d * sc; Q6_K: half its group's d * scale, or a whole one where -32..31 clamps), whole-block decoding agrees with
 * element decoding, a Q6_K element at its group's largest magnitude decodes to -32 steps, and a
 * hand-packed Q5_K block decodes as ggml lays it out (the fifth bit of element l of sub-block j is
 * bit j of qh[l]), as do hand-packed Q4_1 and Q5_1 blocks (d * q + m, low nibbles elements 0..15,
 * bit e of Q5_1's qh the fifth bit of element e).
 */
class KQuantBlocksTest {

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q5_0", "Q4_1", "Q5_1", "Q4_K", "Q5_K", "Q6_K"})
    void roundTripsWithinAStep(DType type) {
        Random rnd = new Random(7);
        int cols = 1024;
        float[] src = new float[cols];
        for (int i = 0; i < cols; i++) {
            // Blocks of very different ranges, some all-positive, one all zero.
            int block = i / 32;
            src[i] = block == 5 ? 0f : (rnd.nextFloat() * 2 - (block % 3 == 0 ? 0 : 1)) * (1 + block % 7);
        }
        MemorySegment data = Arena.ofAuto().allocate(type.rowBytes(cols));
        QuantBlocks.encode(type, src, 0, cols, data, 0);
        Matrix m = new Matrix("m", type, 1, cols, data);
        float[] decoded = new float[cols];
        for (int b = 0; b < cols / type.blockSize(); b++) {
            QuantBlocks.decodeBlock(type, data, (long) b * type.blockBytes(), decoded, b * type.blockSize());
        }
        for (int i = 0; i < cols; i++) {
            float w = QuantBlocks.element(m, 0, i);
            assertEquals(decoded[i], w, "block decode vs element decode at " + i);
            double step = switch (type) {
                case Q5_0, Q4_1, Q5_1 -> Math.abs(QuantBlocks.scale(m, 0, i));
                case Q4_K, Q5_K, Q6_K -> Math.abs(KQuantBlocks.unitScale(m, 0, i));
                default -> throw new IllegalStateException();
            };
            double bound = step / 2 * (1 + 1e-3) + 1e-6 * Math.abs(src[i]);
            // The grids are asymmetric (-16..15, -32..31): a value of the other sign than the
            // block's largest magnitude may clamp by up to a whole step.
            if (type == DType.Q5_0 && Math.abs(src[i]) > 15.5 * step || type == DType.Q6_K && Math.abs(src[i]) > 31.5 * step) {
                bound = step * 1.001;
            }
            assertTrue(Math.abs(w - src[i]) <= bound, type + " element " + i + ": " + src[i] + " decoded as " + w
                    + " (step " + step + ")");
        }
    }

    @Test
    void q6kLargestMagnitudeIsMinus32Steps() {
        float[] src = new float[256];
        for (int i = 0; i < 256; i++) {
            src[i] = (i % 16) * 0.01f * (i / 16 + 1);
        }
        MemorySegment data = Arena.ofAuto().allocate(DType.Q6_K.rowBytes(256));
        QuantBlocks.encode(DType.Q6_K, src, 0, 256, data, 0);
        Matrix m = new Matrix("m", DType.Q6_K, 1, 256, data);
        for (int g = 0; g < 16; g++) {
            assertEquals(-32, KQuantBlocks.quant(m, 0, 16 * g + 15), "group " + g);
            assertEquals(32 - 32, KQuantBlocks.quant(m, 0, 16 * g), "zero in group " + g);
        }
    }

    @Test
    void q5kHighBitsFollowGgmlLayout() {
        // d = 1, dmin = 0.5, sc[j] = j + 1, m[j] = 2 * j (j < 4 in the low 6 bits of bytes 0..7;
        // j >= 4 in the nibbles of bytes 8..11, all below 16 so no top bits).
        int[] sc = {1, 2, 3, 4, 5, 6, 7, 8};
        int[] mins = {0, 2, 4, 6, 8, 10, 12, 14};
        MemorySegment b = Arena.ofAuto().allocate(DType.Q5_K.blockBytes());
        ValueLayout.OfShort le = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        b.set(le, 0, Float.floatToFloat16(1f));
        b.set(le, 2, Float.floatToFloat16(0.5f));
        for (int j = 0; j < 4; j++) {
            b.set(ValueLayout.JAVA_BYTE, 4 + j, (byte) sc[j]);
            b.set(ValueLayout.JAVA_BYTE, 8 + j, (byte) mins[j]);
            b.set(ValueLayout.JAVA_BYTE, 12 + j, (byte) (sc[j + 4] | mins[j + 4] << 4));
        }
        Random rnd = new Random(3);
        int[] qh = new int[32];
        int[] qs = new int[128];
        for (int l = 0; l < 32; l++) {
            qh[l] = rnd.nextInt(256);
            b.set(ValueLayout.JAVA_BYTE, 16 + l, (byte) qh[l]);
        }
        for (int k = 0; k < 128; k++) {
            qs[k] = rnd.nextInt(256);
            b.set(ValueLayout.JAVA_BYTE, 48 + k, (byte) qs[k]);
        }
        Matrix m = new Matrix("m", DType.Q5_K, 1, 256, b);
        float[] block = new float[256];
        QuantBlocks.decodeBlock(DType.Q5_K, b, 0, block, 0);
        // ggml's order: per 64 weights, the low nibbles of 32 qs bytes (fifth bit under mask u1),
        // then their high nibbles (mask u2), both masks moving two bits up each time.
        int y = 0;
        for (int g = 0; g < 4; g++) {
            int u1 = 1 << (2 * g);
            int u2 = 2 << (2 * g);
            for (int half = 0; half < 2; half++) {
                int j = 2 * g + half;
                for (int l = 0; l < 32; l++, y++) {
                    int nibble = half == 0 ? qs[32 * g + l] & 15 : qs[32 * g + l] >> 4;
                    int q = nibble + ((qh[l] & (half == 0 ? u1 : u2)) != 0 ? 16 : 0);
                    float expected = sc[j] * q - 0.5f * mins[j];
                    assertEquals(expected, QuantBlocks.element(m, 0, y), 1e-6, "weight " + y);
                    assertEquals(expected, block[y], 1e-6, "block decode, weight " + y);
                }
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q4_1", "Q5_1"})
    void blocksWithAMinFollowGgmlLayout(DType type) {
        MemorySegment b = Arena.ofAuto().allocate(type.blockBytes());
        ValueLayout.OfShort le = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        b.set(le, 0, Float.floatToFloat16(0.25f));
        b.set(le, 2, Float.floatToFloat16(-1.5f));
        Random rnd = new Random(11);
        int qh = type == DType.Q5_1 ? rnd.nextInt() : 0;
        long qs = 4;
        if (type == DType.Q5_1) {
            b.set(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 4, qh);
            qs = 8;
        }
        int[] bytes = new int[16];
        for (int j = 0; j < 16; j++) {
            bytes[j] = rnd.nextInt(256);
            b.set(ValueLayout.JAVA_BYTE, qs + j, (byte) bytes[j]);
        }
        Matrix m = new Matrix("m", type, 1, 32, b);
        float[] block = new float[32];
        QuantBlocks.decodeBlock(type, b, 0, block, 0);
        // ggml's order: element j from the low nibble of byte j and bit j of qh, element j + 16
        // from its high nibble and bit j + 16.
        for (int j = 0; j < 16; j++) {
            int q0 = (bytes[j] & 15) | ((qh >>> j) & 1) << 4;
            int q1 = (bytes[j] >> 4) | ((qh >>> (j + 16)) & 1) << 4;
            assertEquals(0.25f * q0 - 1.5f, QuantBlocks.element(m, 0, j), 1e-6, "weight " + j);
            assertEquals(0.25f * q1 - 1.5f, QuantBlocks.element(m, 0, j + 16), 1e-6, "weight " + (j + 16));
            assertEquals(q0, QuantBlocks.quant(m, 0, j));
            assertEquals(0.25f * q1 - 1.5f, block[j + 16], 1e-6, "block decode, weight " + (j + 16));
        }
        assertEquals(-1.5f, QuantBlocks.min(m, 0, 31));
    }
}
