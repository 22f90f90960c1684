package qwen.service.engine;

import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import qwen.service.model.LayerWeights;
import qwen.service.model.Matrix;
import qwen.service.model.QwenConfig;
import qwen.service.model.ShardWeights;

/**
 * An independent, deliberately naive Qwen-1 forward pass written straight from SPEC section 3,
 * in double precision, with no KV cache: every call recomputes the whole sequence. It shares no
 * code with the engine (not even kernels or rotary tables), so agreement means both read the spec
 * the same way.
 */
final class ReferenceQwen {

    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final ShardWeights w;
    private final QwenConfig c;

    ReferenceQwen(ShardWeights weights) {
        this.w = weights;
        this.c = weights.config();
    }

    /**
     * Logits of the last position of {@code ids}, where the first {@code prefillLength} ids were the
     * prompt (it fixes the dynamic-NTK alpha, SPEC 3.5).
     */
    double[] lastLogits(int[] ids, int prefillLength) {
        int n = ids.length;
        int d = c.hiddenSize();
        double alpha = 1;
        if (c.useDynamicNtk()) {
            double contextValue = Math.log((double) prefillLength / c.seqLength()) / Math.log(2) + 1;
            alpha = Math.max(Math.pow(2, Math.ceil(contextValue)) - 1, 1);
        }
        double base = c.ropeBase() * Math.pow(alpha, (double) c.headDim() / (c.headDim() - 2));
        double[][] x = new double[n][];
        for (int t = 0; t < n; t++) {
            x[t] = row(w.wte(), ids[t]);
        }
        for (LayerWeights layer : w.layers()) {
            double[][] q = new double[n][];
            double[][] k = new double[n][];
            double[][] v = new double[n][];
            for (int t = 0; t < n; t++) {
                double[] qkv = add(linear(layer.cAttn(), rmsnorm(x[t], layer.ln1())), layer.cAttnBias());
                q[t] = rope(slice(qkv, 0, d), t, base);
                k[t] = rope(slice(qkv, d, d), t, base);
                v[t] = slice(qkv, 2 * d, d);
                if (c.useLognAttn() && n > c.seqLength() && t + 1 > c.seqLength()) {
                    double f = Math.log(t + 1) / Math.log(c.seqLength());
                    for (int i = 0; i < d; i++) {
                        q[t][i] *= f;
                    }
                }
            }
            for (int t = 0; t < n; t++) {
                double[] attn = attention(q, k, v, t);
                x[t] = add(x[t], linear(layer.attnCProj(), attn));
                double[] h = rmsnorm(x[t], layer.ln2());
                double[] a1 = linear(layer.w1(), h);
                double[] a2 = linear(layer.w2(), h);
                for (int i = 0; i < a1.length; i++) {
                    a1[i] *= a2[i] / (1 + Math.exp(-a2[i]));                  // w1(h) * silu(w2(h))
                }
                x[t] = add(x[t], linear(layer.mlpCProj(), a1));
            }
        }
        return linear(w.lmHead(), rmsnorm(x[n - 1], w.lnF()));
    }

    private double[] attention(double[][] q, double[][] k, double[][] v, int t) {
        int hd = c.headDim();
        double[] out = new double[c.hiddenSize()];
        for (int h = 0; h < c.numHeads(); h++) {
            double[] scores = new double[t + 1];
            double max = Double.NEGATIVE_INFINITY;
            for (int s = 0; s <= t; s++) {
                double dot = 0;
                for (int i = 0; i < hd; i++) {
                    dot += q[t][h * hd + i] * k[s][h * hd + i];
                }
                scores[s] = dot / Math.sqrt(hd);
                max = Math.max(max, scores[s]);
            }
            double sum = 0;
            for (int s = 0; s <= t; s++) {
                scores[s] = Math.exp(scores[s] - max);
                sum += scores[s];
            }
            for (int s = 0; s <= t; s++) {
                for (int i = 0; i < hd; i++) {
                    out[h * hd + i] += scores[s] / sum * v[s][h * hd + i];
                }
            }
        }
        return out;
    }

    /** Rotate-half RoPE of every head of x at position pos. */
    private double[] rope(double[] x, int pos, double base) {
        int hd = c.headDim();
        int half = hd / 2;
        double[] out = x.clone();
        for (int h = 0; h < c.numHeads(); h++) {
            for (int i = 0; i < half; i++) {
                double angle = pos / Math.pow(base, 2.0 * i / hd);
                double a = x[h * hd + i];
                double b = x[h * hd + i + half];
                out[h * hd + i] = a * Math.cos(angle) - b * Math.sin(angle);
                out[h * hd + i + half] = b * Math.cos(angle) + a * Math.sin(angle);
            }
        }
        return out;
    }

    private double[] rmsnorm(double[] x, float[] weight) {
        double ss = 0;
        for (double v : x) {
            ss += v * v;
        }
        double inv = 1 / Math.sqrt(ss / x.length + c.rmsEps());
        double[] out = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = x[i] * inv * weight[i];
        }
        return out;
    }

    private static double[] linear(Matrix m, double[] x) {
        double[] out = new double[m.rows()];
        for (int r = 0; r < m.rows(); r++) {
            double s = 0;
            for (int i = 0; i < m.cols(); i++) {
                s += element(m, (long) r * m.cols() + i) * x[i];
            }
            out[r] = s;
        }
        return out;
    }

    private static double[] row(Matrix m, int r) {
        double[] out = new double[m.cols()];
        for (int i = 0; i < m.cols(); i++) {
            out[i] = element(m, (long) r * m.cols() + i);
        }
        return out;
    }

    private static double element(Matrix m, long i) {
        return switch (m.dtype()) {
            case F32 -> m.data().getAtIndex(F32, i);
            case BF16 -> Float.intBitsToFloat((m.data().getAtIndex(U16, i) & 0xFFFF) << 16);
            case F16 -> Float.float16ToFloat(m.data().getAtIndex(U16, i));
            case Q8_0, Q4_0, Q5_0, Q4_1, Q5_1, Q4_K, Q5_K, Q6_K, Q4_G128, Q4_0_R16, Q8_0_R16 -> qwen.service.model.QuantBlocks.element(m, (int) (i / m.cols()), (int) (i % m.cols()));
        };
    }

    private static double[] add(double[] a, float[] b) {
        double[] out = a.clone();
        for (int i = 0; i < out.length; i++) {
            out[i] += b[i];
        }
        return out;
    }

    private static double[] add(double[] a, double[] b) {
        double[] out = a.clone();
        for (int i = 0; i < out.length; i++) {
            out[i] += b[i];
        }
        return out;
    }

    private static double[] slice(double[] a, int from, int len) {
        double[] out = new double[len];
        System.arraycopy(a, from, out, 0, len);
        return out;
    }
}
