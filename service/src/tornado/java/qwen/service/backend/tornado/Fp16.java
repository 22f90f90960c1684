package qwen.service.backend.tornado;

import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.LongArray;

/**
 * How the device holds fp16 weights and turns them into f32.
 *
 * <p><b>Packing.</b> A matrix [rows, cols] is stored four weights to a long, {@link #longsPerRow}
 * = ceil(cols / 4) longs a row, quarter-interleaved: long m of a row holds the weights of columns
 * m, m + q, m + 2q and m + 3q (q the longs per row) in its bits 0-15, 16-31, 32-47 and 48-63, and
 * zeros past the last column. A thread then brings four weights with one 8-byte load, so a
 * work-group keeps four times the bytes in flight that 2-byte loads gave: a matrix-vector product
 * of a 2,048-column row was latency-bound at 0.45-0.76 TB/s on an H100 with 2-byte loads. The
 * interleave keeps the activations' loads coalesced: neighbouring threads read neighbouring longs
 * and so neighbouring columns of each quarter.
 *
 * <p><b>Decoding.</b> Weights travel as raw fp16 bits, so one kernel runs on devices with and
 * without a half type (PoCL on CPUs has none) and TornadoVM's OpenCL backend, which cannot
 * reinterpret bits, compiles it. A 128-entry table made once on the host ({@link #table}) maps
 * the top six bits (sign and exponent) to the value of one mantissa step (entries 0-63) and to the
 * value with a zero mantissa (entries 64-127): fp16 = mantissa * step + base, exact for every
 * finite value (the product has at most 10 significant bits and the sum is the fp16 value
 * itself). A weight costs a shift, two masks, two cached loads and a multiply-add.
 */
final class Fp16 {

    /** fp16 weights in one long. */
    static final int PER_LONG = 4;

    /** Floats in the decode table. */
    static final int TABLE = 128;

    private Fp16() {
    }

    /** Longs one packed row of {@code cols} weights takes. */
    static int longsPerRow(int cols) {
        return (cols + PER_LONG - 1) / PER_LONG;
    }

    /** The decode table (see the class comment); entries of the infinity/NaN exponent are never read. */
    static FloatArray table() {
        FloatArray t = new FloatArray(TABLE);
        for (int i = 0; i < 64; i++) {
            short top = (short) (i << 10);
            float base = Float.float16ToFloat(top);
            t.set(i, Float.float16ToFloat((short) (top | 1)) - base);
            t.set(64 + i, base);
        }
        return t;
    }

    /** Source of a matrix's fp16 bits by row and column, for {@link #pack}. */
    @FunctionalInterface
    interface Bits {
        short at(int row, int col);
    }

    /** Packs rows [from, to) of a [rows, cols] matrix into {@code out} (see the class comment). */
    static void pack(Bits bits, int cols, int from, int to, LongArray out) {
        int q = longsPerRow(cols);
        for (int r = from; r < to; r++) {
            for (int m = 0; m < q; m++) {
                long v = 0;
                for (int k = 0; k < PER_LONG; k++) {
                    int c = m + k * q;
                    if (c < cols) {
                        v |= (bits.at(r, c) & 0xFFFFL) << (16 * k);
                    }
                }
                out.set(r * q + m, v);
            }
        }
    }

    /**
     * The fp16 value of the low 16 bits of {@code h} (higher bits are ignored, so a word shifted
     * right by 16 needs no mask), by the decode table {@code dec}.
     */
    static float decode(int h, FloatArray dec) {
        int i = (h >> 10) & 63;
        return (h & 0x3FF) * dec.get(i) + dec.get(64 + i);
    }

    /**
     * fp16 bits to f32 with plain arithmetic, for the embedding rows, which are read a row at a time
     * and need no table. Normal and subnormal values decode exactly (2^e is built from the
     * exponent's bits, every factor a power of two); infinities and NaN never occur because
     * {@link DeviceWeights} rejects them. About 40 operations.
     */
    static float half(short bits) {
        int h = bits & 0xFFFF;
        int e = (h >> 10) & 0x1F;
        int subnormal = ((e - 1) >> 31) & 1;     // 1 when e == 0: exponent 1, no implicit leading 1
        int en = e + subnormal;
        float pow2 = (1f + (en & 1)) * (1f + 3f * ((en >> 1) & 1)) * (1f + 15f * ((en >> 2) & 1))
                * (1f + 255f * ((en >> 3) & 1)) * (1f + 65535f * ((en >> 4) & 1));
        float magnitude = (1 - subnormal + (h & 0x3FF) * 0.0009765625f) * pow2 * 3.0517578125e-5f;
        return magnitude * (1 - 2 * ((h >> 15) & 1));
    }
}
