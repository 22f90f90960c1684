package qwen.service.backend.cpu;

import static jdk.incubator.vector.VectorOperators.ADD;
import static jdk.incubator.vector.VectorOperators.ASHR;
import static jdk.incubator.vector.VectorOperators.B2S;
import static jdk.incubator.vector.VectorOperators.I2F;
import static jdk.incubator.vector.VectorOperators.LSHL;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Decode dot products of Q6_K rows (210-byte blocks of 256: ql[128], qh[64], int8 scales[16],
 * f16 d) with 8-bit activations ({@link Q8Activations}), two rows at a time, for
 * {@link KQuantDot}: q - 32 in [-32, 31] is assembled from its ql nibble and qh bit pair, and each
 * group of 16 gets its own FMA (|products| &le; 32 * 127 per short).
 */
final class Q6kDot {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_256;
    private static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);

    private Q6kDot() {
    }

    /**
     * Two Q6_K rows. Per unit of 64 weights the ql bytes at 64h + l and 64h + 32 + l and the qh
     * bytes at 128 + 32h + l (16 each) are widened once; quad 0..3 takes the low nibbles of the first
     * and second ql run, then their high nibbles, each over qh's bit pair 2 * quad. Every group
     * of 16 has its own int8 scale, so one FMA per 16 weights.
     */
    static void rows2(MemorySegment w, long b0, long b1, int cols, short[] xq, int xo, float[] xd, int so,
                      float[] out, int at, boolean two) {
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = a0;
        // One flat loop over units of 64 weights (four groups of 16), four units per block: unit
        // u of a block is half h = u / 2 at offset l = 16 (u % 2) into its 32-byte runs.
        int units = cols / 64;
        for (int u = 0; u < units; u++) {
            int blk = u >> 2;
            int h = (u >> 1) & 1;
            int l = 16 * (u & 1);
            long e0 = b0 + 210L * blk;
            long e1 = b1 + 210L * blk;
            float d0 = Float.float16ToFloat(w.get(LE_SHORT, e0 + 208));
            float d1 = Float.float16ToFloat(w.get(LE_SHORT, e1 + 208));
            int x = xo + 256 * blk + 128 * h + l;
            int k = so + 8 * blk + 4 * h;
            int sc = 8 * h + l / 16;
            long q = e0 + 64 * h + l;
            ShortVector qlA = (ShortVector) ByteVector.fromMemorySegment(B16, w, q, LE).convertShape(B2S, S, 0);
            ShortVector qlB = (ShortVector) ByteVector.fromMemorySegment(B16, w, q + 32, LE).convertShape(B2S, S, 0);
            ShortVector qh = (ShortVector) ByteVector.fromMemorySegment(B16, w, e0 + 128 + 32 * h + l, LE)
                    .convertShape(B2S, S, 0);
            IntVector p = qlA.and((short) 15).or(qh.lanewise(LSHL, 4).and((short) 48)).sub((short) 32)
                    .mul(ShortVector.fromArray(S, xq, x)).reinterpretAsInts();
            a0 = ((FloatVector) p.add(p.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0))
                    .fma(FloatVector.broadcast(F, d0 * w.get(ValueLayout.JAVA_BYTE, e0 + 192 + sc) * xd[k]), a0);
            p = qlB.and((short) 15).or(qh.lanewise(LSHL, 2).and((short) 48)).sub((short) 32)
                    .mul(ShortVector.fromArray(S, xq, x + 32)).reinterpretAsInts();
            a0 = ((FloatVector) p.add(p.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0))
                    .fma(FloatVector.broadcast(F, d0 * w.get(ValueLayout.JAVA_BYTE, e0 + 194 + sc) * xd[k + 1]), a0);
            p = qlA.lanewise(ASHR, 4).and((short) 15).or(qh.and((short) 48)).sub((short) 32)
                    .mul(ShortVector.fromArray(S, xq, x + 64)).reinterpretAsInts();
            a0 = ((FloatVector) p.add(p.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0))
                    .fma(FloatVector.broadcast(F, d0 * w.get(ValueLayout.JAVA_BYTE, e0 + 196 + sc) * xd[k + 2]), a0);
            p = qlB.lanewise(ASHR, 4).and((short) 15).or(qh.lanewise(ASHR, 2).and((short) 48)).sub((short) 32)
                    .mul(ShortVector.fromArray(S, xq, x + 96)).reinterpretAsInts();
            a0 = ((FloatVector) p.add(p.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0))
                    .fma(FloatVector.broadcast(F, d0 * w.get(ValueLayout.JAVA_BYTE, e0 + 198 + sc) * xd[k + 3]), a0);
            q = e1 + 64 * h + l;
            qlA = (ShortVector) ByteVector.fromMemorySegment(B16, w, q, LE).convertShape(B2S, S, 0);
            qlB = (ShortVector) ByteVector.fromMemorySegment(B16, w, q + 32, LE).convertShape(B2S, S, 0);
            qh = (ShortVector) ByteVector.fromMemorySegment(B16, w, e1 + 128 + 32 * h + l, LE)
                    .convertShape(B2S, S, 0);
            p = qlA.and((short) 15).or(qh.lanewise(LSHL, 4).and((short) 48)).sub((short) 32)
                    .mul(ShortVector.fromArray(S, xq, x)).reinterpretAsInts();
            a1 = ((FloatVector) p.add(p.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0))
                    .fma(FloatVector.broadcast(F, d1 * w.get(ValueLayout.JAVA_BYTE, e1 + 192 + sc) * xd[k]), a1);
            p = qlB.and((short) 15).or(qh.lanewise(LSHL, 2).and((short) 48)).sub((short) 32)
                    .mul(ShortVector.fromArray(S, xq, x + 32)).reinterpretAsInts();
            a1 = ((FloatVector) p.add(p.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0))
                    .fma(FloatVector.broadcast(F, d1 * w.get(ValueLayout.JAVA_BYTE, e1 + 194 + sc) * xd[k + 1]), a1);
            p = qlA.lanewise(ASHR, 4).and((short) 15).or(qh.and((short) 48)).sub((short) 32)
                    .mul(ShortVector.fromArray(S, xq, x + 64)).reinterpretAsInts();
            a1 = ((FloatVector) p.add(p.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0))
                    .fma(FloatVector.broadcast(F, d1 * w.get(ValueLayout.JAVA_BYTE, e1 + 196 + sc) * xd[k + 2]), a1);
            p = qlB.lanewise(ASHR, 4).and((short) 15).or(qh.lanewise(ASHR, 2).and((short) 48)).sub((short) 32)
                    .mul(ShortVector.fromArray(S, xq, x + 96)).reinterpretAsInts();
            a1 = ((FloatVector) p.add(p.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0))
                    .fma(FloatVector.broadcast(F, d1 * w.get(ValueLayout.JAVA_BYTE, e1 + 198 + sc) * xd[k + 3]), a1);
        }
        out[at] = a0.reduceLanes(ADD);
        if (two) {
            out[at + 1] = a1.reduceLanes(ADD);
        }
    }

}
