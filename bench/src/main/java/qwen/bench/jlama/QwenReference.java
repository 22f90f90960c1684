package qwen.bench.jlama;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import qwen.service.model.CheckpointLayout;
import qwen.service.model.DType;
import qwen.service.model.ModelDirectory;
import qwen.service.model.QwenConfig;
import qwen.service.model.safetensors.SafeTensorsFile;

/**
 * A deliberately naive, single-threaded float32 Qwen-1 forward pass straight from the Qwen-1 checkpoint
 * (SPEC section 3, without dynamic NTK / logn, which only act past seq_length). Only for small models: it
 * loads every weight into float arrays. Used to check that Jlama on the {@link Qwen2Twin} computes the
 * same model.
 */
public final class QwenReference {

    private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final QwenConfig c;
    private final Map<String, float[]> w = new HashMap<>();

    public QwenReference(Path qwenDir) {
        ModelDirectory md = ModelDirectory.open(qwenDir);
        this.c = md.config();
        for (Path f : md.weightFiles()) {
            try (SafeTensorsFile stf = SafeTensorsFile.open(f)) {
                for (var e : stf.tensors().entrySet()) {
                    w.put(e.getKey(), toFloats(stf.data(e.getKey()), e.getValue().dtype()));
                }
            }
        }
    }

    public QwenConfig config() {
        return c;
    }

    private static float[] toFloats(MemorySegment s, DType t) {
        int n = Math.toIntExact(s.byteSize() / t.bytes());
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = switch (t) {
                case F32 -> s.getAtIndex(FLOAT, i);
                case F16 -> Float.float16ToFloat(s.getAtIndex(SHORT, i));
                case BF16 -> Float.intBitsToFloat((s.getAtIndex(SHORT, i) & 0xffff) << 16);
                case Q8_0, Q4_0, Q5_0, Q4_1, Q5_1, Q4_K, Q5_K, Q6_K, Q4_G128, Q4_0_R16, Q8_0_R16 -> throw new IllegalArgumentException("safetensors tensors are never " + t.tag());
            };
        }
        return out;
    }

    /** Greedy continuation: {@code steps + 1} tokens (the first from the prompt). */
    public int[] greedy(int[] prompt, int steps) {
        State st = new State(prompt.length + steps + 1);
        float[] logits = null;
        for (int t : prompt) {
            logits = st.step(t);
        }
        int[] out = new int[steps + 1];
        for (int i = 0; i <= steps; i++) {
            out[i] = argmax(logits);
            if (i < steps) {
                logits = st.step(out[i]);
            }
        }
        return out;
    }

    /** Argmax after every prefix of {@code ids}. */
    public int[] teacherForcedArgmax(int[] ids) {
        State st = new State(ids.length);
        int[] out = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            out[i] = argmax(st.step(ids[i]));
        }
        return out;
    }

    /** Logits after feeding all of {@code ids}. */
    public float[] lastLogits(int[] ids) {
        State st = new State(ids.length);
        float[] l = null;
        for (int id : ids) {
            l = st.step(id);
        }
        return l;
    }

    public static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }

    private final class State {
        final float[][][] k;
        final float[][][] v;
        int pos;

        State(int maxLen) {
            k = new float[c.numLayers()][maxLen][];
            v = new float[c.numLayers()][maxLen][];
        }

        float[] step(int token) {
            int d = c.hiddenSize();
            int hd = c.headDim();
            int heads = c.numHeads();
            int proj = c.projDim();
            float[] x = new float[d];
            System.arraycopy(w.get(CheckpointLayout.WTE), token * d, x, 0, d);
            for (int l = 0; l < c.numLayers(); l++) {
                float[] h = rms(x, w.get(CheckpointLayout.block(l, CheckpointLayout.LN_1)));
                float[] qkv = matvec(w.get(CheckpointLayout.block(l, CheckpointLayout.C_ATTN)), h, 3 * proj, d);
                float[] b = w.get(CheckpointLayout.block(l, CheckpointLayout.C_ATTN_BIAS));
                for (int i = 0; i < qkv.length; i++) {
                    qkv[i] += b[i];
                }
                float[] q = java.util.Arrays.copyOfRange(qkv, 0, proj);
                float[] kk = java.util.Arrays.copyOfRange(qkv, proj, 2 * proj);
                float[] vv = java.util.Arrays.copyOfRange(qkv, 2 * proj, 3 * proj);
                rope(q, pos, heads, hd);
                rope(kk, pos, heads, hd);
                k[l][pos] = kk;
                v[l][pos] = vv;
                float[] att = new float[proj];
                double scale = 1.0 / Math.sqrt(hd);
                for (int hh = 0; hh < heads; hh++) {
                    double[] s = new double[pos + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j <= pos; j++) {
                        double dot = 0;
                        for (int i = 0; i < hd; i++) {
                            dot += q[hh * hd + i] * k[l][j][hh * hd + i];
                        }
                        s[j] = dot * scale;
                        max = Math.max(max, s[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j <= pos; j++) {
                        s[j] = Math.exp(s[j] - max);
                        sum += s[j];
                    }
                    for (int j = 0; j <= pos; j++) {
                        double p = s[j] / sum;
                        for (int i = 0; i < hd; i++) {
                            att[hh * hd + i] += (float) (p * v[l][j][hh * hd + i]);
                        }
                    }
                }
                float[] o = matvec(w.get(CheckpointLayout.block(l, CheckpointLayout.ATTN_C_PROJ)), att, d, proj);
                for (int i = 0; i < d; i++) {
                    x[i] += o[i];
                }
                float[] h2 = rms(x, w.get(CheckpointLayout.block(l, CheckpointLayout.LN_2)));
                int f = c.ffnDim();
                float[] a1 = matvec(w.get(CheckpointLayout.block(l, CheckpointLayout.W1)), h2, f, d);
                float[] a2 = matvec(w.get(CheckpointLayout.block(l, CheckpointLayout.W2)), h2, f, d);
                for (int i = 0; i < f; i++) {
                    float g = a2[i];
                    a1[i] *= (float) (g / (1.0 + Math.exp(-g)));
                }
                float[] m = matvec(w.get(CheckpointLayout.block(l, CheckpointLayout.MLP_C_PROJ)), a1, d, f);
                for (int i = 0; i < d; i++) {
                    x[i] += m[i];
                }
            }
            pos++;
            float[] hf = rms(x, w.get(CheckpointLayout.LN_F));
            return matvec(w.get(CheckpointLayout.LM_HEAD), hf, c.vocabSize(), d);
        }
    }

    private float[] rms(float[] x, float[] g) {
        double ss = 0;
        for (float xi : x) {
            ss += xi * xi;
        }
        double r = 1.0 / Math.sqrt(ss / x.length + c.rmsEps());
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = (float) (x[i] * r) * g[i];
        }
        return out;
    }

    /** rotate_half RoPE on every head (SPEC 3.4): pairs (i, i + hd/2), inv_freq = base^(-2i/hd). */
    private void rope(float[] t, int pos, int heads, int hd) {
        int half = hd / 2;
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < half; i++) {
                double inv = 1.0 / Math.pow(c.ropeBase(), (2.0 * i) / hd);
                double a = pos * inv;
                double cs = Math.cos(a);
                double sn = Math.sin(a);
                int i0 = h * hd + i;
                int i1 = i0 + half;
                float x0 = t[i0];
                float x1 = t[i1];
                t[i0] = (float) (x0 * cs - x1 * sn);
                t[i1] = (float) (x0 * sn + x1 * cs);
            }
        }
    }

    private static float[] matvec(float[] m, float[] x, int rows, int cols) {
        float[] out = new float[rows];
        for (int r = 0; r < rows; r++) {
            double acc = 0;
            int base = r * cols;
            for (int j = 0; j < cols; j++) {
                acc += m[base + j] * x[j];
            }
            out[r] = (float) acc;
        }
        return out;
    }
}
