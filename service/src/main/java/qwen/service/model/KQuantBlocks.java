package qwen.service.model;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The K-quant block formats {@link DType#Q4_K}, {@link DType#Q5_K} and {@link DType#Q6_K} (ggml's byte layouts, blocks
 * of 256 weights), element by element: the reference decoding the kernels are tested against, and
 * the encoders that tests and {@link qwen.service.model.gguf.RandomGguf} use.
 *
 * <p>Every element is {@code unitScale * quant - offset}: Q4_K has q in [0, 15], unitScale = d *
 * sc[j] and offset = dmin * m[j] for its sub-block j of 32 (sc and m 6-bit, packed in 12 bytes);
 * Q5_K is Q4_K with a fifth bit per quant (q in [0, 31], bit j of qh[i % 32] for element i of
 * sub-block j), its 128 nibble bytes moved 32 bytes on past the qh bytes;
 * Q6_K has q - 32 in [-32, 31], unitScale = d * scales[i / 16] (int8) and no offset.
 *
 * <p>The encoders are simple min/max fits, not llama.cpp's error-minimizing search: a Q4_K
 * (Q5_K) sub-block spans [min(0, lo), hi] in 15 (31) steps, a Q6_K group of 16 maps its largest magnitude to
 * -32; the sub-block mins and scales are rounded up on the block's 6-bit (Q4_K) or 8-bit (Q6_K)
 * grid, so every weight decodes within half a step of its source (Q4_K and Q5_K share that
 * encoder; only the quant width and where the nibbles go differ).
 */
public final class KQuantBlocks {

    /** Weights per K-quant block. */
    public static final int QK = 256;

    private static final ValueLayout.OfShort LE_SHORT =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private KQuantBlocks() {
    }

    private static long block(Matrix w, int row, int col) {
        return row * w.rowBytes() + (long) (col / QK) * w.dtype().blockBytes();
    }

    private static int u8(MemorySegment s, long at) {
        return s.get(ValueLayout.JAVA_BYTE, at) & 0xFF;
    }

    private static float f16(MemorySegment s, long at) {
        return Float.float16ToFloat(s.get(LE_SHORT, at));
    }

    /** Element (row, col) of a Q4_K / Q5_K / Q6_K matrix as f32. */
    public static float element(Matrix w, int row, int col) {
        return unitScale(w, row, col) * quant(w, row, col) - offset(w, row, col);
    }

    /** The quant of element (row, col): Q4_K's q in [0, 15], Q5_K's in [0, 31], Q6_K's q - 32 in [-32, 31]. */
    public static int quant(Matrix w, int row, int col) {
        return quant(w.dtype(), w.data(), block(w, row, col), col % QK);
    }

    /** The factor of the quant: d times the scale of the element's sub-block. */
    public static float unitScale(Matrix w, int row, int col) {
        MemorySegment s = w.data();
        long b = block(w, row, col);
        int i = col % QK;
        return switch (w.dtype()) {
            case Q4_K, Q5_K -> f16(s, b) * q4kScale(s, b + 4, i / 32);
            case Q6_K -> f16(s, b + 208) * s.get(ValueLayout.JAVA_BYTE, b + 192 + i / 16);
            default -> throw notK(w);
        };
    }

    /** What is subtracted from unitScale * quant: Q4_K's and Q5_K's dmin * m of the sub-block, Q6_K's 0. */
    public static float offset(Matrix w, int row, int col) {
        MemorySegment s = w.data();
        long b = block(w, row, col);
        return switch (w.dtype()) {
            case Q4_K, Q5_K -> f16(s, b + 2) * q4kMin(s, b + 4, (col % QK) / 32);
            case Q6_K -> 0f;
            default -> throw notK(w);
        };
    }

    private static IllegalArgumentException notK(Matrix w) {
        return new IllegalArgumentException(w.name() + " is " + w.dtype().tag() + ", not a K-quant");
    }

    /** Quant i (0..255) of the block at byte b. */
    static int quant(DType type, MemorySegment s, long b, int i) {
        return switch (type) {
            case Q4_K -> {
                int packed = u8(s, b + 16 + 32 * (i / 64) + i % 32);
                yield i % 64 < 32 ? packed & 15 : packed >>> 4;
            }
            case Q5_K -> {
                int packed = u8(s, b + 48 + 32 * (i / 64) + i % 32);
                int high = (u8(s, b + 16 + i % 32) >>> (i / 32)) & 1;
                yield (i % 64 < 32 ? packed & 15 : packed >>> 4) | high << 4;
            }
            case Q6_K -> {
                int h = i / 128;
                int quad = (i % 128) / 32;
                int l = i % 32;
                int ql = u8(s, b + 64 * h + 32 * (quad & 1) + l);
                int low = quad < 2 ? ql & 15 : ql >>> 4;
                int high = (u8(s, b + 128 + 32 * h + l) >>> (2 * quad)) & 3;
                yield (low | high << 4) - 32;
            }
            default -> throw new IllegalArgumentException(type.tag() + " is not a K-quant");
        };
    }

    /** The 6-bit scale of Q4_K (and Q5_K) sub-block j from the 12 packed bytes at sc. */
    public static int q4kScale(MemorySegment s, long sc, int j) {
        return j < 4 ? u8(s, sc + j) & 63 : (u8(s, sc + j + 4) & 15) | (u8(s, sc + j - 4) >>> 6) << 4;
    }

    /** The 6-bit min of Q4_K (and Q5_K) sub-block j from the 12 packed bytes at sc. */
    public static int q4kMin(MemorySegment s, long sc, int j) {
        return j < 4 ? u8(s, sc + j + 4) & 63 : (u8(s, sc + j + 4) >>> 4) | (u8(s, sc + j) >>> 6) << 4;
    }

    /** The 256 weights of the block at byte b into out[off ..]. */
    public static void decode(DType type, MemorySegment s, long b, float[] out, int off) {
        switch (type) {
            case Q4_K, Q5_K -> {
                float d = f16(s, b);
                float dmin = f16(s, b + 2);
                for (int j = 0; j < 8; j++) {
                    float scale = d * q4kScale(s, b + 4, j);
                    float min = dmin * q4kMin(s, b + 4, j);
                    for (int i = 32 * j; i < 32 * j + 32; i++) {
                        out[off + i] = scale * quant(type, s, b, i) - min;
                    }
                }
            }
            case Q6_K -> {
                float d = f16(s, b + 208);
                for (int i = 0; i < QK; i++) {
                    out[off + i] = d * s.get(ValueLayout.JAVA_BYTE, b + 192 + i / 16) * quant(type, s, b, i);
                }
            }
            default -> throw new IllegalArgumentException(type.tag() + " is not a K-quant");
        }
    }

    /** Encodes the 256 values src[s ..] as one Q4_K, Q5_K or Q6_K block at dst[o ..]. */
    static void encode(DType type, float[] src, int s, MemorySegment dst, long o) {
        switch (type) {
            case Q4_K -> encodeQ4K(src, s, dst, o, 15);
            case Q5_K -> encodeQ4K(src, s, dst, o, 31);
            case Q6_K -> encodeQ6K(src, s, dst, o);
            default -> throw new IllegalArgumentException(type.tag() + " is not a K-quant");
        }
    }

    /** Q4_K (top quant 15) or Q5_K (top 31): the same fit, Q5_K's high bits in qh ahead of the nibbles. */
    private static void encodeQ4K(float[] src, int s, MemorySegment dst, long o, int top) {
        float[] lo = new float[8];
        float[] hi = new float[8];
        float maxMin = 0;
        for (int j = 0; j < 8; j++) {
            lo[j] = 0;
            hi[j] = 0;
            for (int i = s + 32 * j; i < s + 32 * j + 32; i++) {
                lo[j] = Math.min(lo[j], src[i]);
                hi[j] = Math.max(hi[j], src[i]);
            }
            maxMin = Math.max(maxMin, -lo[j]);
        }
        // The mins first, rounded up so that -dmin * m <= lo; then each step covers up to hi from
        // there, also rounded up, so nothing clamps beyond f16 rounding.
        short mBits = Float.floatToFloat16(maxMin / 63f);
        float dmin = Float.float16ToFloat(mBits);
        int[] m = new int[8];
        float[] need = new float[8];
        float maxStep = 0;
        for (int j = 0; j < 8; j++) {
            m[j] = dmin > 0 ? Math.min(63, (int) Math.ceil(-lo[j] / dmin)) : 0;
            need[j] = (hi[j] + dmin * m[j]) / top;
            maxStep = Math.max(maxStep, need[j]);
        }
        short dBits = Float.floatToFloat16(maxStep / 63f);
        float d = Float.float16ToFloat(dBits);
        int[] sc = new int[8];
        for (int j = 0; j < 8; j++) {
            sc[j] = d > 0 ? Math.min(63, (int) Math.ceil(need[j] / d)) : 0;
        }
        dst.set(LE_SHORT, o, dBits);
        dst.set(LE_SHORT, o + 2, mBits);
        byte[] packed = new byte[12];
        for (int j = 0; j < 4; j++) {
            packed[j] = (byte) (sc[j] | (sc[j + 4] >> 4) << 6);
            packed[j + 4] = (byte) (m[j] | (m[j + 4] >> 4) << 6);
            packed[j + 8] = (byte) ((sc[j + 4] & 15) | (m[j + 4] & 15) << 4);
        }
        MemorySegment.copy(packed, 0, dst, ValueLayout.JAVA_BYTE, o + 4, 12);
        int[] q = new int[QK];
        for (int j = 0; j < 8; j++) {
            float step = d * sc[j];
            float off = dmin * m[j];
            for (int i = 32 * j; i < 32 * j + 32; i++) {
                q[i] = step > 0 ? Math.clamp(Math.round((src[s + i] + off) / step), 0, top) : 0;
            }
        }
        long qs = o + 16;
        if (top == 31) {
            for (int l = 0; l < 32; l++) {
                int qh = 0;
                for (int j = 0; j < 8; j++) {
                    qh |= (q[32 * j + l] >> 4) << j;
                }
                dst.set(ValueLayout.JAVA_BYTE, o + 16 + l, (byte) qh);
            }
            qs += 32;
        }
        for (int g = 0; g < 4; g++) {
            for (int l = 0; l < 32; l++) {
                dst.set(ValueLayout.JAVA_BYTE, qs + 32 * g + l, (byte) ((q[64 * g + l] & 15) | (q[64 * g + 32 + l] & 15) << 4));
            }
        }
    }

    private static void encodeQ6K(float[] src, int s, MemorySegment dst, long o) {
        float[] group = new float[16];
        float amax = 0;
        for (int g = 0; g < 16; g++) {
            float max = 0;
            for (int i = s + 16 * g; i < s + 16 * g + 16; i++) {
                if (Math.abs(src[i]) > Math.abs(max)) {
                    max = src[i];
                }
            }
            group[g] = max / -32f;
            amax = Math.max(amax, Math.abs(group[g]));
        }
        short dBits = Float.floatToFloat16(amax / 127f);
        float d = Float.float16ToFloat(dBits);
        for (int g = 0; g < 16; g++) {
            // Rounded away from zero, so the group's largest magnitude stays within -32 steps.
            int sc = d > 0 ? (int) Math.clamp(Math.signum(group[g]) * Math.ceil(Math.abs(group[g]) / d), -128, 127) : 0;
            dst.set(ValueLayout.JAVA_BYTE, o + 192 + g, (byte) sc);
            group[g] = d * sc;
        }
        dst.set(LE_SHORT, o + 208, dBits);
        for (long at = o; at < o + 192; at++) {
            dst.set(ValueLayout.JAVA_BYTE, at, (byte) 0);
        }
        for (int i = 0; i < QK; i++) {
            float step = group[i / 16];
            int q = step != 0 ? Math.clamp(Math.round(src[s + i] / step) + 32, 0, 63) : 32;
            int h = i / 128;
            int quad = (i % 128) / 32;
            int l = i % 32;
            long ql = o + 64 * h + 32 * (quad & 1) + l;
            int low = q & 15;
            dst.set(ValueLayout.JAVA_BYTE, ql, (byte) (u8(dst, ql) | (quad < 2 ? low : low << 4)));
            long qh = o + 128 + 32 * h + l;
            dst.set(ValueLayout.JAVA_BYTE, qh, (byte) (u8(dst, qh) | (q >> 4) << (2 * quad)));
        }
    }
}
