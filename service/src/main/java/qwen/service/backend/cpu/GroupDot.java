package qwen.service.backend.cpu;

import static jdk.incubator.vector.VectorOperators.ASHR;
import static jdk.incubator.vector.VectorOperators.B2S;
import static jdk.incubator.vector.VectorOperators.I2F;
import static jdk.incubator.vector.VectorOperators.LSHL;
import static jdk.incubator.vector.VectorOperators.S2I;
import static jdk.incubator.vector.VectorOperators.XOR;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorSpecies;
import qwen.service.model.DType;
import qwen.service.model.Matrix;
import qwen.service.model.RowGroups;

/**
 * {@link DType#Q4_0_R16} and {@link DType#Q8_0_R16} matrices ({@link RowGroups}: Q4_0 and Q8_0 with
 * 16 rows interleaved) times 8-bit activations ({@link Q8Activations}), a group of 16 rows at a
 * time, each row in one lane.
 *
 * <p>Q4_0_R16: per block of 32 columns, column j's byte of the 16 rows is one 16-byte load, widened to 16
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
 *
 * <p>Q8_0_R16: a product of two 8-bit quants needs 15 bits, so only two fit a 16-bit lane. Per pair
 * of columns, each column's 16 quants are widened to shorts and multiplied by its activation quant,
 * and the two products added (at most 2 * 128 * 127 = 32512 in magnitude). Read as eight ints,
 * those lanes hold rows 0..7 in their low halves and rows 8..15 in their high halves
 * ({@link RowGroups#q8Lane}). The low halves are first flipped to low + 32768 (XOR 0x8000: within
 * [256, 65280], never negative), so each int is exactly 65536 * high + (low + 32768) and
 * {@code v >> 16} is exactly high: the block sums the ints as they are and their high halves, and
 * takes the low sums out after the block as sum(v) - 65536 * sum(high) - 16 * 32768 (exact in int
 * arithmetic: the true sum is within 16 * 32512). About nine 256-bit operations per 32 weights
 * against twelve and scalar work in the row-major kernel, and one sequential stream of memory:
 * about 1.5x the row-major rate from memory.
 */
final class GroupDot {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final VectorSpecies<Short> S = Q8Activations.SPREAD;
    private static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfFloat LE_FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(LE);
    private static final int ROWS = RowGroups.ROWS;
    private static final int GROUP_BLOCK = RowGroups.groupBlockBytes(DType.Q4_0_R16);
    private static final ShortVector LOW_BIAS = ShortVector.fromArray(S, new short[] {
            (short) 0x8000, 0, (short) 0x8000, 0, (short) 0x8000, 0, (short) 0x8000, 0,
            (short) 0x8000, 0, (short) 0x8000, 0, (short) 0x8000, 0, (short) 0x8000, 0}, 0);
    private static final int Q8_GROUP_BLOCK = RowGroups.groupBlockBytes(DType.Q8_0_R16);
    /** Shorts of spread activations per block: 32 columns of 16 lanes. */
    private static final int SPREAD_BLOCK = 32 * ROWS;

    private GroupDot() {
    }

    /**
     * Group g of the row-grouped matrix w times token t of a (quantized and
     * {@link Q8Activations#spread spread}): out[t * rows + 16 g + i].
     */
    static void group(Matrix w, Q8Activations a, int t, float[] out, int g) {
        if (w.dtype() == DType.Q4_0_R16) {
            q4Group(w.data(), w.rows(), w.cols(), a, t, out, g);
        } else if (w.dtype() == DType.Q8_0_R16) {
            q8Group(w.data(), w.rows(), w.cols(), a, t, out, g);
        } else {
            throw new IllegalArgumentException(w.name() + " is " + w.dtype().tag() + ", not laid out in row groups");
        }
    }

    private static void q4Group(MemorySegment w, int rows, int cols, Q8Activations a, int t, float[] out, int g) {
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

    private static void q8Group(MemorySegment w, int rows, int cols, Q8Activations a, int t, float[] out, int g) {
        int blocks = cols / 32;
        short[] xs = a.spreadQuants();
        float[] xd = a.scales();
        FloatVector f0 = FloatVector.zero(F);
        FloatVector f1 = f0;
        long base = (long) g * blocks * Q8_GROUP_BLOCK;
        for (int b = 0, k = t * blocks, x = t * cols * ROWS; b < blocks; b++, k++, x += SPREAD_BLOCK,
                base += Q8_GROUP_BLOCK) {
            IntVector all = IntVector.zero(I);
            IntVector high = all;
            long q = base + RowGroups.SCALE_BYTES;
            // Written out rather than through helpers: a vector returned from a call C2 does not
            // inline is boxed on the heap.
            for (int j = 0; j < 32; j += 2) {
                ShortVector w0 = (ShortVector) ByteVector.fromMemorySegment(B16, w, q + ROWS * j, LE)
                        .convertShape(B2S, S, 0);
                ShortVector w1 = (ShortVector) ByteVector.fromMemorySegment(B16, w, q + ROWS * (j + 1), LE)
                        .convertShape(B2S, S, 0);
                IntVector v = w0.mul(ShortVector.fromArray(S, xs, x + ROWS * j))
                        .add(w1.mul(ShortVector.fromArray(S, xs, x + ROWS * (j + 1))))
                        .lanewise(XOR, LOW_BIAS).reinterpretAsInts();
                all = all.add(v);
                high = high.add(v.lanewise(ASHR, 16));
            }
            // Each of the 16 column pairs added 0x8000 to the low halves.
            IntVector low = all.sub(high.lanewise(LSHL, 16)).sub(16 * 0x8000);
            FloatVector dx = FloatVector.broadcast(F, xd[k]);
            f0 = ((FloatVector) low.convert(I2F, 0)).fma(FloatVector.fromMemorySegment(F, w, base, LE).mul(dx), f0);
            f1 = ((FloatVector) high.convert(I2F, 0))
                    .fma(FloatVector.fromMemorySegment(F, w, base + 4L * F.length(), LE).mul(dx), f1);
        }
        int o = t * rows + g * ROWS;
        f0.intoArray(out, o);
        f1.intoArray(out, o + F.length());
    }

    /**
     * Row r of a row-grouped matrix, column pairs [p0, p0 + np) (2 p0 and 2 np multiples of 32), dequantized
     * straight into {@link PackedMatmul}'s pair order: column 2 (p0 + m) to wp[o + m], column
     * 2 (p0 + m) + 1 to wp[o + np + m]: the same floats as the Q4_0 / Q8_0 rows they came from
     * ({@link QuantDot#fill}), each d * q rounded once. Element by element: a row's bytes lie 16
     * apart here, which no vector load gathers.
     */
    static void pairs(DType type, MemorySegment w, int cols, int r, int p0, int np, float[] wp, int o) {
        if (type == DType.Q4_0_R16) {
            q4Pairs(w, cols, r, p0, np, wp, o);
        } else if (type == DType.Q8_0_R16) {
            q8Pairs(w, cols, r, p0, np, wp, o);
        } else {
            throw new IllegalArgumentException(type.tag() + " is not laid out in row groups");
        }
    }

    private static void q4Pairs(MemorySegment w, int cols, int r, int p0, int np, float[] wp, int o) {
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

    /** {@link #pairs} of a Q8_0_R16 matrix: each d * q rounded once, as the Q8_0 rows give it. */
    private static void q8Pairs(MemorySegment w, int cols, int r, int p0, int np, float[] wp, int o) {
        int blocks = cols / 32;
        int i = r % ROWS;
        long group = (long) (r / ROWS) * blocks;
        for (int c = 2 * p0; c < 2 * (p0 + np); c += 32) {
            long base = (group + c / 32) * Q8_GROUP_BLOCK;
            float d = w.get(LE_FLOAT, base + 4L * i);
            long q = base + RowGroups.SCALE_BYTES + RowGroups.q8Lane(i);
            int m = o + (c - 2 * p0) / 2;
            for (int j = 0; j < 32; j += 2) {
                wp[m + j / 2] = w.get(ValueLayout.JAVA_BYTE, q + (long) ROWS * j) * d;
                wp[m + np + j / 2] = w.get(ValueLayout.JAVA_BYTE, q + (long) ROWS * (j + 1)) * d;
            }
        }
    }
}
