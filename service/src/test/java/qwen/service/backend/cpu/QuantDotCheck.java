package qwen.service.backend.cpu;

import static org.junit.jupiter.api.Assertions.fail;

import qwen.service.model.KQuantBlocks;
import qwen.service.model.Matrix;
import qwen.service.model.QuantBlocks;

/**
 * The check shared by {@link QuantDotTest} and {@link KQuantDotTest}: a block-quantized matrix times
 * x through {@link VectorKernels#matmul} (below the packed path's token count, so through the
 * kernels with 8-bit activations) against {@link ScalarQuantDot} on the same quantized activations.
 *
 * <p>Tolerance: 1e-5 of the sum of the magnitudes of the terms the kernel adds in f32, sum over
 * elements of {@link #termMagnitude} * |q_x| * d_x. The integer block sums are exact in both; what
 * differs is the f32 rounding of each block's scaled sum and of the running total against the
 * reference's double. A wrong quant, scale, min or block moves a row by about one block's share of
 * that sum, far outside the bound.
 */
final class QuantDotCheck {

    private QuantDotCheck() {
    }

    /** Fails naming the matrix, token and row of the first output outside the bound. */
    static void check(VectorKernels kernels, Matrix w, float[] x, int tokens) {
        int rows = w.rows();
        int cols = w.cols();
        Q8Activations a = new Q8Activations().quantize(x, tokens, cols);
        float[] expected = new float[tokens * rows];
        ScalarQuantDot.matmul(w, a, tokens, expected);
        float[] actual = new float[tokens * rows];
        kernels.matmul(w, x, tokens, actual);
        for (int t = 0; t < tokens; t++) {
            for (int r = 0; r < rows; r++) {
                double scale = 0;
                for (int i = 0; i < cols; i++) {
                    scale += termMagnitude(w, r, i) * Math.abs(a.quants()[t * cols + i]) * a.scales()[t * cols / 32 + i / 32];
                }
                double bound = 1e-5 * scale + 1e-30;
                float e = expected[t * rows + r];
                float g = actual[t * rows + r];
                if (!(Math.abs(g - e) <= bound)) {
                    fail(w.name() + " token " + t + " row " + r + ": expected " + e + ", got " + g + " (bound " + bound + ")");
                }
            }
        }
    }

    /**
     * The magnitude of what element (r, i) contributes per unit of activation: |d q| for Q8_0 /
     * Q4_0 / Q5_0, |d q| + |m| for Q4_1 / Q5_1, |unitScale q| + |offset| for the K-quants.
     */
    static double termMagnitude(Matrix w, int r, int i) {
        if (w.dtype().kQuant()) {
            return Math.abs(KQuantBlocks.unitScale(w, r, i) * KQuantBlocks.quant(w, r, i))
                    + Math.abs(KQuantBlocks.offset(w, r, i));
        }
        double scaled = Math.abs((double) QuantBlocks.scale(w, r, i) * QuantBlocks.quant(w, r, i));
        return w.dtype().withMin() ? scaled + Math.abs(QuantBlocks.min(w, r, i)) : scaled;
    }
}
