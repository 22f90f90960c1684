package qwen.service.model;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The block formats of {@link DType#Q8_0}, {@link DType#Q4_0}, {@link DType#Q5_0},
 * {@link DType#Q4_1} and {@link DType#Q5_1} (and, through {@link KQuantBlocks}, the K-quants),
 * element by element: the reference decoding the kernels are tested against, and the encoders
 * that tests, the benchmark's file writer and quantize-on-load use. Encoding follows ggml's
 * reference quantizers: Q8_0 takes d = max|w| / 127 and rounds w / d; Q4_0 takes d = m / -8 where
 * m is the element of largest magnitude (with its sign), so that element maps to exactly -8, and
 * clamps w / d + 8.5 to 15; Q5_0 does the same with -16 and 31. Q4_1 (Q5_1) spans the block's
 * [min, max] in 15 (31) steps from m = min, as ggml's do, except that m and d are rounded to f16
 * outwards (m down, d up) so that no element falls outside the grid and every one decodes within
 * half a step.
 */
public final class QuantBlocks {

    private static final ValueLayout.OfShort LE_SHORT =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt LE_INT =
            ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat LE_FLOAT =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private QuantBlocks() {
    }

    /** Element (row, col) of w as f32, for every dtype. */
    public static float element(Matrix w, int row, int col) {
        DType t = w.dtype();
        MemorySegment d = w.data();
        long rowBase = row * w.rowBytes();
        return switch (t) {
            case F32 -> d.get(LE_FLOAT, rowBase + 4L * col);
            case F16 -> Float.float16ToFloat(d.get(LE_SHORT, rowBase + 2L * col));
            case BF16 -> Float.intBitsToFloat((d.get(LE_SHORT, rowBase + 2L * col) & 0xFFFF) << 16);
            case Q8_0, Q4_0, Q5_0, Q4_G128, Q4_0_R16, Q8_0_R16 -> scale(w, row, col) * quant(w, row, col);
            case Q4_1, Q5_1 -> scale(w, row, col) * quant(w, row, col) + min(w, row, col);
            case Q4_K, Q5_K, Q6_K -> KQuantBlocks.element(w, row, col);
        };
    }

    /**
     * The f16 scale d of the block (32 weights of Q8_0, Q4_0, Q5_0, Q4_1, Q5_1; 128 of Q4_G128)
     * that holds element (row, col), as f32 (the row-grouped types keep it as f32).
     */
    public static float scale(Matrix w, int row, int col) {
        if (w.dtype().rowGrouped()) {
            return w.data().get(LE_FLOAT, RowGroups.block(w, row, col) + 4L * (row % RowGroups.ROWS));
        }
        long block = row * w.rowBytes() + (long) (col / w.dtype().blockSize()) * w.dtype().blockBytes();
        return Float.float16ToFloat(w.data().get(LE_SHORT, block));
    }

    /**
     * The f16 min m of the Q4_1 / Q5_1 block that holds element (row, col), as f32: what those
     * types add to d * q.
     */
    public static float min(Matrix w, int row, int col) {
        if (!w.dtype().withMin()) {
            throw new IllegalArgumentException(w.name() + " is " + w.dtype().tag() + ", which has no block min");
        }
        long block = row * w.rowBytes() + (long) (col / 32) * w.dtype().blockBytes();
        return Float.float16ToFloat(w.data().get(LE_SHORT, block + 2));
    }

    /**
     * The quant q of element (row, col) of a 32-weight block matrix (or Q4_G128): signed for Q8_0 / Q4_0 / Q5_0 / Q4_G128 and the row-grouped types
     * (the element is d * q), in [0, 15] for Q4_1 and [0, 31] for Q5_1 (the element is d * q + m).
     */
    public static int quant(Matrix w, int row, int col) {
        DType t = w.dtype();
        MemorySegment d = w.data();
        int i = col % 32;
        if (t.rowGrouped()) {
            byte b = d.get(ValueLayout.JAVA_BYTE, RowGroups.quantByte(w, row, col));
            if (t == DType.Q8_0_R16) {
                return b;
            }
            return i < 16 ? (b & 15) - 8 : b >> 4;
        }
        long block = row * w.rowBytes() + (long) (col / t.blockSize()) * t.blockBytes();
        return switch (t) {
            case Q8_0 -> d.get(ValueLayout.JAVA_BYTE, block + 2 + i);
            case Q4_0, Q4_G128 -> {
                int packed = d.get(ValueLayout.JAVA_BYTE, block + t.partOffset(col % t.blockSize() / 32) + (i % 16)) & 0xFF;
                yield (i < 16 ? packed & 15 : packed >>> 4) - 8;
            }
            case Q5_0 -> {
                int packed = d.get(ValueLayout.JAVA_BYTE, block + 6 + (i % 16)) & 0xFF;
                int high = (d.get(LE_INT, block + 2) >>> i) & 1;
                yield ((i < 16 ? packed & 15 : packed >>> 4) | high << 4) - 16;
            }
            case Q4_1 -> {
                int packed = d.get(ValueLayout.JAVA_BYTE, block + 4 + (i % 16)) & 0xFF;
                yield i < 16 ? packed & 15 : packed >>> 4;
            }
            case Q5_1 -> {
                int packed = d.get(ValueLayout.JAVA_BYTE, block + 8 + (i % 16)) & 0xFF;
                int high = (d.get(LE_INT, block + 4) >>> i) & 1;
                yield (i < 16 ? packed & 15 : packed >>> 4) | high << 4;
            }
            default -> throw new IllegalArgumentException(w.name() + " is " + t.tag() + ", not block-quantized");
        };
    }

    /** Row {@code row} of w as f32 into out[offset .. offset + cols). */
    public static void row(Matrix w, int row, float[] out, int offset) {
        for (int c = 0; c < w.cols(); c++) {
            out[offset + c] = element(w, row, c);
        }
    }

    /**
     * Decodes the block of {@code type} at byte b of s (32 weights, 128 for Q4_G128, 256 for the K-quants) into
     * out[off ..].
     */
    public static void decodeBlock(DType type, MemorySegment s, long b, float[] out, int off) {
        if (type.kQuant()) {
            KQuantBlocks.decode(type, s, b, out, off);
            return;
        }
        Matrix m = new Matrix("block", type, 1, type.blockSize(), s.asSlice(b, type.blockBytes()));
        for (int i = 0; i < type.blockSize(); i++) {
            out[off + i] = element(m, 0, i);
        }
    }

    /**
     * Encodes n values (n a multiple of the block size) of src from srcOffset as blocks of a
     * quantized type into dst at byte dstOffset.
     */
    public static void encode(DType type, float[] src, int srcOffset, int n, MemorySegment dst, long dstOffset) {
        if (!type.quantized()) {
            throw new IllegalArgumentException(type.tag() + " is not a block-quantized type");
        }
        int size = type.blockSize();
        if (n % size != 0) {
            throw new IllegalArgumentException(n + " values is not a whole number of " + size + "-value "
                    + type.tag() + " blocks");
        }
        for (int b = 0; b < n / size; b++) {
            int s = srcOffset + size * b;
            long o = dstOffset + (long) b * type.blockBytes();
            switch (type) {
                case Q8_0 -> encodeQ8(src, s, dst, o);
                case Q4_0 -> encodeQ4(src, s, dst, o);
                case Q4_G128 -> encodeQ4G128(src, s, dst, o);
                case Q5_0 -> encodeQ5(src, s, dst, o);
                case Q4_1 -> encodeWithMin(src, s, dst, o, 15);
                case Q5_1 -> encodeWithMin(src, s, dst, o, 31);
                case Q4_K, Q5_K, Q6_K -> KQuantBlocks.encode(type, src, s, dst, o);
                case Q4_0_R16, Q8_0_R16 -> throw new IllegalArgumentException(type.tag() + " is not encoded from values: "
                        + "RowGroups re-lays Q4_0 and Q8_0 matrices in it");
                default -> throw new IllegalArgumentException(type.tag() + " is not a block-quantized type");
            }
        }
    }

    /**
     * The block's value of largest magnitude, with its sign: Q4_0 and Q5_0 map it to the most
     * negative quant, as llama.cpp does, so the grid's extra negative step is not wasted.
     */
    private static float signedMax(float[] src, int s) {
        float amax = 0;
        float max = 0;
        for (int i = 0; i < 32; i++) {
            float v = src[s + i];
            if (Math.abs(v) > amax) {
                amax = Math.abs(v);
                max = v;
            }
        }
        return max;
    }

    private static void encodeQ5(float[] src, int s, MemorySegment dst, long o) {
        float d = signedMax(src, s) / -16f;
        float id = d != 0 ? 1f / d : 0f;
        dst.set(LE_SHORT, o, Float.floatToFloat16(d));
        int qh = 0;
        for (int i = 0; i < 16; i++) {
            int lo = Math.min(31, (int) (src[s + i] * id + 16.5f));
            int hi = Math.min(31, (int) (src[s + 16 + i] * id + 16.5f));
            dst.set(ValueLayout.JAVA_BYTE, o + 6 + i, (byte) ((lo & 15) | (hi & 15) << 4));
            qh |= (lo >> 4) << i | (hi >> 4) << (i + 16);
        }
        dst.set(LE_INT, o + 2, qh);
    }

    private static void encodeQ8(float[] src, int s, MemorySegment dst, long o) {
        float amax = 0;
        for (int i = 0; i < 32; i++) {
            amax = Math.max(amax, Math.abs(src[s + i]));
        }
        float d = amax / 127f;
        float id = d != 0 ? 1f / d : 0f;
        dst.set(LE_SHORT, o, Float.floatToFloat16(d));
        for (int i = 0; i < 32; i++) {
            dst.set(ValueLayout.JAVA_BYTE, o + 2 + i, (byte) Math.round(src[s + i] * id));
        }
    }

    private static void encodeQ4(float[] src, int s, MemorySegment dst, long o) {
        float d = signedMax(src, s) / -8f;
        float id = d != 0 ? 1f / d : 0f;
        dst.set(LE_SHORT, o, Float.floatToFloat16(d));
        for (int i = 0; i < 16; i++) {
            int lo = Math.min(15, (int) (src[s + i] * id + 8.5f));
            int hi = Math.min(15, (int) (src[s + 16 + i] * id + 8.5f));
            dst.set(ValueLayout.JAVA_BYTE, o + 2 + i, (byte) (lo | hi << 4));
        }
    }

    /** Q4_0's rounding with one d for the 128 weights, from the largest of the four parts. */
    private static void encodeQ4G128(float[] src, int s, MemorySegment dst, long o) {
        float max = 0;
        for (int part = 0; part < 4; part++) {
            float m = signedMax(src, s + 32 * part);
            max = Math.abs(m) > Math.abs(max) ? m : max;
        }
        float d = max / -8f;
        float id = d != 0 ? 1f / d : 0f;
        dst.set(LE_SHORT, o, Float.floatToFloat16(d));
        for (int part = 0; part < 4; part++) {
            for (int i = 0; i < 16; i++) {
                int lo = Math.max(0, Math.min(15, (int) (src[s + 32 * part + i] * id + 8.5f)));
                int hi = Math.max(0, Math.min(15, (int) (src[s + 32 * part + 16 + i] * id + 8.5f)));
                dst.set(ValueLayout.JAVA_BYTE, o + 2 + 16 * part + i, (byte) (lo | hi << 4));
            }
        }
    }

    /**
     * Q4_1 (top quant 15) or Q5_1 (top 31): m is the block's min rounded down to an f16, d the
     * step from there to the max in top steps rounded up to one, both checked in the f32
     * arithmetic the decoder uses, so d * top + m &gt;= max and every element rounds to its nearest
     * grid point without clamping.
     */
    private static void encodeWithMin(float[] src, int s, MemorySegment dst, long o, int top) {
        float lo = src[s];
        float hi = src[s];
        for (int i = s + 1; i < s + 32; i++) {
            lo = Math.min(lo, src[i]);
            hi = Math.max(hi, src[i]);
        }
        short mBits = Float.floatToFloat16(lo);
        while (Float.float16ToFloat(mBits) > lo) {
            mBits = f16Below(mBits);
        }
        float m = Float.float16ToFloat(mBits);
        short dBits = Float.floatToFloat16((hi - m) / top);
        while (Float.float16ToFloat(dBits) * top + m < hi) {
            dBits++;
        }
        float d = Float.float16ToFloat(dBits);
        float id = d != 0 ? 1f / d : 0f;
        dst.set(LE_SHORT, o, dBits);
        dst.set(LE_SHORT, o + 2, mBits);
        long qs = top == 31 ? o + 8 : o + 4;
        int qh = 0;
        for (int i = 0; i < 16; i++) {
            int lo4 = Math.clamp(Math.round((src[s + i] - m) * id), 0, top);
            int hi4 = Math.clamp(Math.round((src[s + 16 + i] - m) * id), 0, top);
            dst.set(ValueLayout.JAVA_BYTE, qs + i, (byte) ((lo4 & 15) | (hi4 & 15) << 4));
            qh |= (lo4 >> 4) << i | (hi4 >> 4) << (i + 16);
        }
        if (top == 31) {
            dst.set(LE_INT, o + 4, qh);
        }
    }

    /** The next f16 below the (finite) f16 b. */
    private static short f16Below(short b) {
        if ((b & 0x7FFF) == 0) {
            return (short) 0x8001;
        }
        return (short) (b < 0 ? b + 1 : b - 1);
    }
}
