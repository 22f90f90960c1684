package qwen.service.backend.cpu;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;
import qwen.service.kv.LayerKv;
import qwen.service.model.DType;
import qwen.service.model.Matrix;
import qwen.service.model.QuantBlocks;

/** Random weights and activations for kernel tests, from fixed seeds. */
final class KernelTestData {

    private static final ValueLayout.OfShort LE_SHORT =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat LE_FLOAT =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private KernelTestData() {
    }

    /**
     * A [rows, cols] matrix of values uniform in [-1, 1), stored in dtype (rounded to it; Q4_0_R16 and
     * Q8_0_R16 re-laid from Q4_0 and Q8_0).
     */
    static Matrix matrix(DType dtype, int rows, int cols, long seed) {
        if (dtype.rowGrouped()) {
            DType source = dtype == DType.Q4_0_R16 ? DType.Q4_0 : DType.Q8_0;
            return qwen.service.model.RowGroups.of(matrix(source, rows, cols, seed), Arena.ofAuto());
        }
        Random rnd = new Random(seed);
        long n = (long) rows * cols;
        if (dtype.quantized()) {
            MemorySegment data = Arena.ofAuto().allocate(rows * dtype.rowBytes(cols), 64);
            float[] row = new float[cols];
            for (int r = 0; r < rows; r++) {
                for (int i = 0; i < cols; i++) {
                    row[i] = rnd.nextFloat() * 2 - 1;
                }
                QuantBlocks.encode(dtype, row, 0, cols, data, r * dtype.rowBytes(cols));
            }
            return new Matrix("test." + dtype.tag() + "." + rows + "x" + cols, dtype, rows, cols, data);
        }
        MemorySegment data = Arena.ofAuto().allocate(n * dtype.bytes(), 64);
        for (long i = 0; i < n; i++) {
            float v = rnd.nextFloat() * 2 - 1;
            switch (dtype) {
                case F32 -> data.setAtIndex(LE_FLOAT, i, v);
                case F16 -> data.setAtIndex(LE_SHORT, i, Float.floatToFloat16(v));
                case BF16 -> data.setAtIndex(LE_SHORT, i, toBf16(v));
                default -> throw new IllegalStateException();
            }
        }
        return new Matrix("test." + dtype.tag() + "." + rows + "x" + cols, dtype, rows, cols, data);
    }

    /** rows for dtype: rounded up to whole groups of 16 for the row-grouped types, as given for any other type. */
    static int rows(DType dtype, int rows) {
        int g = qwen.service.model.RowGroups.ROWS;
        return dtype.rowGrouped() ? (rows + g - 1) / g * g : rows;
    }

    /** cols for dtype: rounded up to whole blocks (32 elements, 256 for the K-quants) for the block-quantized types. */
    static int cols(DType dtype, int cols) {
        int b = dtype.blockSize();
        return dtype.quantized() ? Math.max(b, (cols + b - 1) / b * b) : cols;
    }

    /** Round-to-nearest-even f32 to bf16 bits (no NaNs occur in test data). */
    static short toBf16(float v) {
        int bits = Float.floatToRawIntBits(v);
        return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
    }

    /** n values uniform in [-scale, scale). */
    /** Positions [0, length) of kv: random keys (seed) and values (seed + 1) of |x| <= 1, width floats each. */
    static void fillKv(LayerKv kv, int length, int width, long seed) {
        float[] keys = floats(length * width, 1f, seed);
        float[] values = floats(length * width, 1f, seed + 1);
        for (int p = 0; p < length; p++) {
            kv.put(p, keys, p * width, values, p * width);
        }
    }

    static float[] floats(int n, float scale, long seed) {
        Random rnd = new Random(seed);
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (rnd.nextFloat() * 2 - 1) * scale;
        }
        return a;
    }

    /** sum_i |w[r, i] * x[t, i]|: the scale against which a dot product's rounding is judged. */
    static double absDot(Matrix w, float[] x, int t, int r) {
        double s = 0;
        for (int i = 0; i < w.cols(); i++) {
            s += Math.abs((double) ScalarKernels.element(w, (long) r * w.cols() + i) * x[t * w.cols() + i]);
        }
        return s;
    }

    /**
     * The most that quantizing token t's activations to 8-bit blocks ({@link Q8Activations}) can
     * move row r's dot product: sum over blocks of (max|x| / 127 / 2) * sum |w|, with a margin of
     * 1e-6 relative for the f32 rounding of the scale.
     */
    static double activationRounding(Matrix w, float[] x, int t, int r) {
        int cols = w.cols();
        double s = 0;
        for (int b = 0; b < cols / 32; b++) {
            double amax = 0;
            double wsum = 0;
            for (int i = 32 * b; i < 32 * b + 32; i++) {
                amax = Math.max(amax, Math.abs(x[t * cols + i]));
                wsum += Math.abs(ScalarKernels.element(w, (long) r * cols + i));
            }
            s += amax / 127 / 2 * wsum;
        }
        return s * (1 + 1e-6);
    }
}
