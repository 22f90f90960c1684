package qwen.service.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The Q5_0, Q4_K and Q6_K encoders and the reference decoder: every decoded weight is within half
 * a quantization step of its source (Q5_0: d / 2, or d where the -16..15 grid clamps; Q4_K: half
 * its sub-block's d * sc; Q6_K: half its group's d * scale, or a whole one where -32..31 clamps), whole-block decoding agrees with
 * element decoding, and a Q6_K element at its group's largest magnitude decodes to -32 steps.
 */
class KQuantBlocksTest {

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q5_0", "Q4_K", "Q6_K"})
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
                case Q5_0 -> Math.abs(QuantBlocks.scale(m, 0, i));
                case Q4_K, Q6_K -> Math.abs(KQuantBlocks.unitScale(m, 0, i));
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
}
