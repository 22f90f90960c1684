package qwen.service.backend.cpu;

import qwen.service.kv.LayerKv;
import qwen.service.model.Matrix;

/**
 * The operations of the forward pass, grouped by operation. Two implementations:
 * {@link ScalarKernels}, plain loops that define the results, and {@link VectorKernels}, the
 * Java Vector API on all cores, which tests compare against the scalar set.
 *
 * <p>Activations are row-major f32 arrays: "tokens rows of width n" means row t occupies
 * [t * n, (t + 1) * n). Weights stay in the checkpoint dtype; every sum accumulates in f32.
 */
public interface Kernels {

    /**
     * Linear layer without bias for a block of rows: out[t, r] = sum_i w[r, i] * x[t, i].
     *
     * @param w weights [rows, cols] in any {@link qwen.service.model.DType}
     * @param x tokens rows of width w.cols()
     * @param tokens number of rows in x (1 for a decode step of one sequence)
     * @param out tokens rows of width w.rows(); overwritten
     */
    void matmul(Matrix w, float[] x, int tokens, float[] out);

    /**
     * RMSNorm per row: out[t, i] = x[t, i] / sqrt(mean_j(x[t, j]^2) + eps) * weight[i].
     * out may be x.
     */
    void rmsnorm(float[] x, int tokens, float[] weight, float eps, float[] out);

    /** Copies embedding row {@code id} of {@code wte}, converted to f32, to out[offset ..]. */
    void embed(Matrix wte, int id, float[] out, int offset);

    /** Adds bias to each of tokens rows of width bias.length in x. */
    void addBias(float[] x, int tokens, float[] bias);

    /**
     * Rotary embedding, "rotate-half" (GPT-NeoX) layout, in place on numHeads heads of width
     * headDim found in each row of x at columns [colOffset, colOffset + numHeads * headDim).
     * With half = headDim / 2, for row t and head h, i in [0, half):
     * a = x[i], b = x[i + half]; x[i] = a cos - b sin; x[i + half] = b cos + a sin, where
     * cos = cos[t * half + i] and sin = sin[t * half + i] (see {@link RopeTable}).
     *
     * @param rowStride width of a row of x
     */
    void rope(float[] x, int tokens, int rowStride, int colOffset, int numHeads, int headDim,
              float[] cos, float[] sin);

    /**
     * Causal softmax attention of {@code tokens} query rows against one sequence's cache.
     * Query row t (x row rowOffset + t) sits at absolute position startPos + t and attends to
     * cached positions 0 .. startPos + t inclusive, which must already be in {@code kv}.
     * Scores are q . k / sqrt(headDim); head h uses columns [h * headDim, (h + 1) * headDim).
     *
     * @param q query rows of width numHeads * headDim (post-RoPE)
     * @param out rows of width numHeads * headDim; rows rowOffset .. rowOffset + tokens - 1 written
     */
    void attention(float[] q, float[] out, int rowOffset, int tokens, int startPos, LayerKv kv,
                   int numHeads, int headDim);

    /** The Qwen MLP gate: up[i] = up[i] * silu(gate[i]), silu(z) = z / (1 + e^-z), for i < n. */
    void siluMul(float[] up, float[] gate, int n);

    /** Residual add: x[i] += y[i] for i < n. */
    void add(float[] x, float[] y, int n);
}
