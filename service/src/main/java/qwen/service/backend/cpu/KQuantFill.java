package qwen.service.backend.cpu;

import static jdk.incubator.vector.VectorOperators.B2I;
import static jdk.incubator.vector.VectorOperators.I2F;
import static jdk.incubator.vector.VectorOperators.LSHL;
import static jdk.incubator.vector.VectorOperators.LSHR;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorSpecies;
import qwen.service.model.DType;
import qwen.service.model.KQuantBlocks;

/**
 * The prefill path's dequantization of Q4_K, Q5_K and Q6_K blocks into f32 tiles, eight weights
 * per int vector (8 bytes widened to ints, where AVX2 has per-lane shifts and conversions), with
 * the same f32 operations in the same order as {@link KQuantBlocks#decode}, so the tiles are
 * bit for bit the reference's: Q4_K / Q5_K (d * sc) * q - dmin * m, Q6_K (d * sc) * (q - 32).
 */
final class KQuantFill {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final VectorSpecies<Byte> B8 = ByteVector.SPECIES_64;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);

    private KQuantFill() {
    }

    /**
     * Rows [r, r + n) of a Q4_K / Q5_K / Q6_K matrix, columns [c0, c1) (whole blocks of 256),
     * dequantized to tile[k * stride + (c - c0)] for row r + k.
     */
    static void fill(DType type, MemorySegment w, int cols, int r, int n, int c0, int c1, float[] tile, int off,
                     int stride) {
        if (c0 % 256 != 0 || c1 % 256 != 0) {
            throw new IllegalArgumentException("columns [" + c0 + ", " + c1 + ") are not whole " + type.tag() + " blocks");
        }
        long rowBytes = type.rowBytes(cols);
        int bytes = type.blockBytes();
        for (int k = 0; k < n; k++) {
            int o = off + k * stride - c0;
            long b = (r + k) * rowBytes + (long) (c0 / 256) * bytes;
            for (int c = c0; c < c1; c += 256, b += bytes) {
                switch (type) {
                    case Q4_K, Q5_K -> q45k(type == DType.Q5_K, w, b, tile, o + c);
                    case Q6_K -> q6k(w, b, tile, o + c);
                    default -> throw new IllegalArgumentException(type.tag() + " is not a K-quant");
                }
            }
        }
    }

    /** One Q4_K or Q5_K block at byte b to tile[at .. at + 256). */
    private static void q45k(boolean five, MemorySegment w, long b, float[] tile, int at) {
        float d = Float.float16ToFloat(w.get(LE_SHORT, b));
        float dmin = Float.float16ToFloat(w.get(LE_SHORT, b + 2));
        long qs = b + (five ? 48 : 16);
        for (int g = 0; g < 4; g++) {
            // Sub-block 2g from the low nibbles of the group's 32 bytes, 2g + 1 from the high ones.
            float scaleLo = d * KQuantBlocks.q4kScale(w, b + 4, 2 * g);
            float minLo = dmin * KQuantBlocks.q4kMin(w, b + 4, 2 * g);
            float scaleHi = d * KQuantBlocks.q4kScale(w, b + 4, 2 * g + 1);
            float minHi = dmin * KQuantBlocks.q4kMin(w, b + 4, 2 * g + 1);
            for (int c = 0; c < 4; c++) {
                IntVector v = (IntVector) ByteVector.fromMemorySegment(B8, w, qs + 32 * g + 8 * c, LE)
                        .convertShape(B2I, I, 0);
                IntVector lo = v.and(15);
                IntVector hi = v.lanewise(LSHR, 4).and(15);
                if (five) {
                    // qh byte l holds the fifth bit of element l of sub-block j at bit j.
                    IntVector h = (IntVector) ByteVector.fromMemorySegment(B8, w, b + 16 + 8 * c, LE)
                            .convertShape(B2I, I, 0);
                    lo = lo.or(h.lanewise(LSHR, 2 * g).and(1).lanewise(LSHL, 4));
                    hi = hi.or(h.lanewise(LSHR, 2 * g + 1).and(1).lanewise(LSHL, 4));
                }
                ((FloatVector) lo.convert(I2F, 0)).mul(scaleLo).sub(minLo).intoArray(tile, at + 64 * g + 8 * c);
                ((FloatVector) hi.convert(I2F, 0)).mul(scaleHi).sub(minHi).intoArray(tile, at + 64 * g + 32 + 8 * c);
            }
        }
    }

    /**
     * One Q6_K block at byte b to tile[at .. at + 256): element 128h + 32quad + l takes its nibble
     * from ql[64h + 32(quad &amp; 1) + l] (low for quad 0, 1, high for 2, 3), its top two bits from
     * qh[32h + l] at 2 quad, and the scale of its group of 16.
     */
    private static void q6k(MemorySegment w, long b, float[] tile, int at) {
        float d = Float.float16ToFloat(w.get(LE_SHORT, b + 208));
        for (int h = 0; h < 2; h++) {
            for (int c = 0; c < 4; c++) {
                long l = 8 * c;
                IntVector qlA = (IntVector) ByteVector.fromMemorySegment(B8, w, b + 64 * h + l, LE).convertShape(B2I, I, 0);
                IntVector qlB = (IntVector) ByteVector.fromMemorySegment(B8, w, b + 64 * h + 32 + l, LE)
                        .convertShape(B2I, I, 0);
                IntVector qh = (IntVector) ByteVector.fromMemorySegment(B8, w, b + 128 + 32 * h + l, LE)
                        .convertShape(B2I, I, 0);
                int e = 128 * h + 8 * c;
                long sc = b + 192 + e / 16;
                IntVector q = qlA.and(15).or(qh.and(3).lanewise(LSHL, 4)).sub(32);
                ((FloatVector) q.convert(I2F, 0)).mul(d * w.get(ValueLayout.JAVA_BYTE, sc)).intoArray(tile, at + e);
                q = qlB.and(15).or(qh.lanewise(LSHR, 2).and(3).lanewise(LSHL, 4)).sub(32);
                ((FloatVector) q.convert(I2F, 0)).mul(d * w.get(ValueLayout.JAVA_BYTE, sc + 2)).intoArray(tile, at + e + 32);
                q = qlA.lanewise(LSHR, 4).and(15).or(qh.lanewise(LSHR, 4).and(3).lanewise(LSHL, 4)).sub(32);
                ((FloatVector) q.convert(I2F, 0)).mul(d * w.get(ValueLayout.JAVA_BYTE, sc + 4)).intoArray(tile, at + e + 64);
                q = qlB.lanewise(LSHR, 4).and(15).or(qh.lanewise(LSHR, 6).and(3).lanewise(LSHL, 4)).sub(32);
                ((FloatVector) q.convert(I2F, 0)).mul(d * w.get(ValueLayout.JAVA_BYTE, sc + 6)).intoArray(tile, at + e + 96);
            }
        }
    }
}
