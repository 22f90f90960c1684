package qwen.service.backend.cpu;

import qwen.service.model.KQuantBlocks;
import qwen.service.model.Matrix;
import qwen.service.model.QuantBlocks;

/**
 * The reference for {@link QuantDot} and {@link KQuantDot}: the same arithmetic element by element, a
 * block-quantized weight row times 8-bit quantized activations ({@link Q8Activations}), each block's integer sum
 * of q_w * q_x scaled by d_w * d_x (plus, for Q4_1 / Q5_1, the block's min m_w * d_x * sum(q_x)) and the
 * blocks summed in double.
 */
final class ScalarQuantDot {

    private ScalarQuantDot() {
    }

    /** out[t * rows + r] for every row and token of the quantized activations a. */
    static void matmul(Matrix w, Q8Activations a, int tokens, float[] out) {
        int rows = w.rows();
        int cols = w.cols();
        if (w.dtype().kQuant()) {
            kQuant(w, a, tokens, out);
            return;
        }
        for (int t = 0; t < tokens; t++) {
            for (int r = 0; r < rows; r++) {
                double sum = 0;
                for (int k = 0; k < cols / 32; k++) {
                    long dot = 0;
                    long xsum = 0;
                    for (int i = 0; i < 32; i++) {
                        short xq = a.quants()[t * cols + 32 * k + i];
                        dot += (long) QuantBlocks.quant(w, r, 32 * k + i) * xq;
                        xsum += xq;
                    }
                    double dx = a.scales()[t * cols / 32 + k];
                    sum += (double) QuantBlocks.scale(w, r, 32 * k) * dx * dot;
                    if (w.dtype().withMin()) {
                        // Q4_1 / Q5_1: the block's min times every activation of the block.
                        sum += (double) QuantBlocks.min(w, r, 32 * k) * dx * xsum;
                    }
                }
                out[t * rows + r] = (float) sum;
            }
        }
    }

    /**
     * Q4_K / Q5_K / Q6_K: per activation block, sum of (unitScale * q - offset) * q_x over the block's
     * 32 elements, scaled by d_x, summed in double.
     */
    private static void kQuant(Matrix w, Q8Activations a, int tokens, float[] out) {
        int rows = w.rows();
        int cols = w.cols();
        for (int t = 0; t < tokens; t++) {
            for (int r = 0; r < rows; r++) {
                double sum = 0;
                for (int k = 0; k < cols / 32; k++) {
                    double block = 0;
                    for (int i = 32 * k; i < 32 * k + 32; i++) {
                        double e = (double) KQuantBlocks.unitScale(w, r, i) * KQuantBlocks.quant(w, r, i)
                                - KQuantBlocks.offset(w, r, i);
                        block += e * a.quants()[t * cols + i];
                    }
                    sum += a.scales()[t * cols / 32 + k] * block;
                }
                out[t * rows + r] = (float) sum;
            }
        }
    }
}
