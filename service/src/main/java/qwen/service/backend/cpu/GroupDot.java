package qwen.service.backend.cpu;

import static jdk.incubator.vector.VectorOperators.ASHR;
import static jdk.incubator.vector.VectorOperators.B2S;
import static jdk.incubator.vector.VectorOperators.I2F;
import static jdk.incubator.vector.VectorOperators.S2I;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorSpecies;
import qwen.service.model.DType;
import qwen.service.model.RowGroups;

/**
 * {@link DType#Q4_0_R16} matrices ({@link RowGroups}: Q4_0 with 16 rows interleaved) times 8-bit
 * activations ({@link Q8Activations}), a group of 16 rows at a time, each row in one lane.
 *
 * <p>Per block of 32 columns, column j's byte of the 16 rows is one 16-byte load, widened to 16
 * shorts: {@code v & 15} is the low nibble (column j, unsigned q in [0, 15]) and {@code v >> 4}
 * the high one (column j + 16, already q - 8: its top bit was flipped on re-laying). Each is
 * multiplied by that column's activation quant, spread over the lanes, into a 16-bit sum per lane:
 * sixteen products of at most 15 * 127 stay within 30480, sixteen of at most 8 * 127 within
 * 16256, so nothing overflows and no lanes are added together. After the block, the two sums are
 * widened to ints and added, the 8 * sum(x quants) of the unsigned low nibbles is taken off
 * ({@link Q8Activations#lowOffsets}), and one FMA per 8 rows adds the exact integer block sum times
 * d_w * d_x to the rows' f32 totals: the blocks are summed in order, as {@link ScalarQuantDot} does
 * in double.
 *
 * <p>Against the row-major Q4_0 kernel of {@link QuantDot} this saves the sum across lanes that
 * each of its blocks ends with, and the scalar work per block: about 1.5x the weights per second
 * on a Zen 1 core (`BlockKernelProbe`).
 */
final class GroupDot {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final VectorSpecies<Short> S = Q8Activations.SPREAD;
    private static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfFloat LE_FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(LE);
    private static final int ROWS = RowGroups.ROWS;
    private static final int GROUP_BLOCK = RowGroups.GROUP_BLOCK_BYTES;
    /** Shorts of spread activations per block: 32 columns of 16 lanes. */
    private static final int SPREAD_BLOCK = 32 * ROWS;

    private GroupDot() {
    }

    /**
     * Group g of the Q4_0_R16 matrix w times token t of a (quantized and
     * {@link Q8Activations#spread spread}): out[t * rows + 16 g + i].
     */
    static void group(MemorySegment w, int rows, int cols, Q8Activations a, int t, float[] out, int g) {
        int blocks = cols / 32;
        short[] xs = a.spreadQuants();
        float[] xd = a.scales();
        float[] low = a.lowOffsets();
        FloatVector f0 = FloatVector.zero(F);
        FloatVector f1 = f0;
        long base = (long) g * blocks * GROUP_BLOCK;
        for (int b = 0, k = t * blocks, x = t * cols * ROWS; b < blocks; b++, k++, x += SPREAD_BLOCK,
                base += GROUP_BLOCK) {
            ShortVector lo = ShortVector.zero(S);
            ShortVector hi = lo;
            long q = base + RowGroups.SCALE_BYTES;
            // Written as a loop: written out sixteen times it ran 15% faster when C2 compiled it, but that
            // large a method exhausted C2's inlining budget (every vector boxed) or C1's registers.
            for (int j = 0; j < 16; j++) {
                ShortVector v = (ShortVector) ByteVector.fromMemorySegment(B16, w, q + ROWS * j, LE)
                        .convertShape(B2S, S, 0);
                lo = lo.add(v.and((short) 15).mul(ShortVector.fromArray(S, xs, x + ROWS * j)));
                hi = hi.add(v.lanewise(ASHR, 4).mul(ShortVector.fromArray(S, xs, x + ROWS * (j + 16))));
            }
            // Written out rather than through a helper: a vector returned from a call C2 does
            // not inline is boxed on the heap.
            FloatVector dx = FloatVector.broadcast(F, xd[k]);
            FloatVector offset = FloatVector.broadcast(F, low[k]);
            IntVector s0 = ((IntVector) lo.convertShape(S2I, I, 0)).add((IntVector) hi.convertShape(S2I, I, 0));
            IntVector s1 = ((IntVector) lo.convertShape(S2I, I, 1)).add((IntVector) hi.convertShape(S2I, I, 1));
            f0 = ((FloatVector) s0.convert(I2F, 0)).sub(offset)
                    .fma(FloatVector.fromMemorySegment(F, w, base, LE).mul(dx), f0);
            f1 = ((FloatVector) s1.convert(I2F, 0)).sub(offset)
                    .fma(FloatVector.fromMemorySegment(F, w, base + 4L * F.length(), LE).mul(dx), f1);
        }
        int o = t * rows + g * ROWS;
        f0.intoArray(out, o);
        f1.intoArray(out, o + F.length());
    }

    /**
     * Row r of a Q4_0_R16 matrix, column pairs [p0, p0 + np) (2 p0 and 2 np multiples of 32), dequantized
     * straight into {@link PackedMatmul}'s pair order: column 2 (p0 + m) to wp[o + m], column
     * 2 (p0 + m) + 1 to wp[o + np + m]: the same floats as the Q4_0 rows they came from
     * ({@link QuantDot#fill}), each d * (q - 8) rounded once. Element by element: a row's bytes lie 16
     * apart here, which no vector load gathers.
     */
    static void pairs(MemorySegment w, int cols, int r, int p0, int np, float[] wp, int o) {
        int blocks = cols / 32;
        int i = r % ROWS;
        long group = (long) (r / ROWS) * blocks;
        for (int c = 2 * p0; c < 2 * (p0 + np); c += 32) {
            long base = (group + c / 32) * GROUP_BLOCK;
            float d = w.get(LE_FLOAT, base + 4L * i);
            long q = base + RowGroups.SCALE_BYTES + i;
            int m = o + (c - 2 * p0) / 2;
            for (int j = 0; j < 16; j += 2) {
                // Byte j holds columns c + j and c + j + 16 (both even), byte j + 1 the odd ones after them.
                byte even = w.get(ValueLayout.JAVA_BYTE, q + (long) ROWS * j);
                byte odd = w.get(ValueLayout.JAVA_BYTE, q + (long) ROWS * (j + 1));
                wp[m + j / 2] = ((even & 15) - 8) * d;
                wp[m + 8 + j / 2] = (even >> 4) * d;
                wp[m + np + j / 2] = ((odd & 15) - 8) * d;
                wp[m + np + 8 + j / 2] = (odd >> 4) * d;
            }
        }
    }
}
