package qwen.service.backend.cpu;

import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import qwen.service.kv.LayerKv;
import qwen.service.model.Matrix;
import qwen.service.model.QuantBlocks;

/**
 * The reference kernels: plain loops, one element at a time, on the calling thread. They define
 * the results that {@link VectorKernels} is tested against, and are far too slow to serve with.
 *
 * <p>Where a long sum is involved (matmul, the RMSNorm mean, attention scores, softmax and the
 * weighted sum of values) the reference accumulates in double and rounds once to f32, so it is
 * more accurate than the f32 accumulation {@link Kernels} promises; the tests' tolerances bound
 * the f32 rounding of the fast kernels against it.
 */
public final class ScalarKernels implements Kernels {

    private static final ValueLayout.OfShort LE_SHORT =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat LE_FLOAT =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Element {@code index} (row * cols + col) of w, converted to f32. */
    static float element(Matrix w, long index) {
        return switch (w.dtype()) {
            case F32 -> w.data().getAtIndex(LE_FLOAT, index);
            case F16 -> Float.float16ToFloat(w.data().getAtIndex(LE_SHORT, index));
            case BF16 -> bf16ToFloat(w.data().getAtIndex(LE_SHORT, index));
            case Q8_0, Q4_0, Q5_0, Q4_1, Q5_1, Q4_K, Q5_K, Q6_K, Q4_G128, Q4_0_R16, Q8_0_R16 -> QuantBlocks.element(w, (int) (index / w.cols()), (int) (index % w.cols()));
        };
    }

    /** A bfloat16 is the upper half of an f32. */
    static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    @Override
    public void matmul(Matrix w, float[] x, int tokens, float[] out) {
        int rows = w.rows();
        int cols = w.cols();
        for (int t = 0; t < tokens; t++) {
            for (int r = 0; r < rows; r++) {
                double sum = 0;
                for (int i = 0; i < cols; i++) {
                    sum += (double) element(w, (long) r * cols + i) * x[t * cols + i];
                }
                out[t * rows + r] = (float) sum;
            }
        }
    }

    @Override
    public void rmsnorm(float[] x, int tokens, float[] weight, float eps, float[] out) {
        int n = weight.length;
        for (int t = 0; t < tokens; t++) {
            double squares = 0;
            for (int i = 0; i < n; i++) {
                squares += (double) x[t * n + i] * x[t * n + i];
            }
            float scale = (float) (1.0 / Math.sqrt(squares / n + eps));
            for (int i = 0; i < n; i++) {
                out[t * n + i] = x[t * n + i] * scale * weight[i];
            }
        }
    }

    @Override
    public void embed(Matrix wte, int id, float[] out, int offset) {
        int cols = wte.cols();
        for (int i = 0; i < cols; i++) {
            out[offset + i] = element(wte, (long) id * cols + i);
        }
    }

    @Override
    public void addBias(float[] x, int tokens, float[] bias) {
        int n = bias.length;
        for (int t = 0; t < tokens; t++) {
            for (int i = 0; i < n; i++) {
                x[t * n + i] += bias[i];
            }
        }
    }

    @Override
    public void rope(float[] x, int tokens, int rowStride, int colOffset, int numHeads, int headDim,
                     float[] cos, float[] sin) {
        int half = headDim / 2;
        for (int t = 0; t < tokens; t++) {
            for (int h = 0; h < numHeads; h++) {
                int base = t * rowStride + colOffset + h * headDim;
                for (int i = 0; i < half; i++) {
                    float c = cos[t * half + i];
                    float s = sin[t * half + i];
                    float a = x[base + i];
                    float b = x[base + i + half];
                    x[base + i] = a * c - b * s;
                    x[base + i + half] = b * c + a * s;
                }
            }
        }
    }

    @Override
    public void attention(float[] q, float[] out, int rowOffset, int tokens, int startPos, LayerKv kv,
                          int numHeads, int headDim) {
        int width = numHeads * headDim;
        double scale = 1.0 / Math.sqrt(headDim);
        double[] scores = new double[startPos + tokens];
        for (int t = 0; t < tokens; t++) {
            int row = (rowOffset + t) * width;
            int keys = startPos + t + 1;
            for (int h = 0; h < numHeads; h++) {
                int col = h * headDim;
                double max = Double.NEGATIVE_INFINITY;
                for (int p = 0; p < keys; p++) {
                    double dot = 0;
                    for (int i = 0; i < headDim; i++) {
                        dot += (double) q[row + col + i] * kv.key(p, col + i);
                    }
                    scores[p] = dot * scale;
                    max = Math.max(max, scores[p]);
                }
                double total = 0;
                for (int p = 0; p < keys; p++) {
                    scores[p] = Math.exp(scores[p] - max);
                    total += scores[p];
                }
                for (int i = 0; i < headDim; i++) {
                    double sum = 0;
                    for (int p = 0; p < keys; p++) {
                        sum += scores[p] * kv.value(p, col + i);
                    }
                    out[row + col + i] = (float) (sum / total);
                }
            }
        }
    }

    @Override
    public void siluMul(float[] up, float[] gate, int n) {
        for (int i = 0; i < n; i++) {
            up[i] = up[i] * (gate[i] / (1f + (float) Math.exp(-gate[i])));
        }
    }

    @Override
    public void add(float[] x, float[] y, int n) {
        for (int i = 0; i < n; i++) {
            x[i] += y[i];
        }
    }
}
