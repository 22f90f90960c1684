package qwen.service.backend.tornado;

import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

/** Row moves on the device: the embedding lookup and the gather of the rows the head needs. */
final class RowKernels {

    private RowKernels() {
    }

    /** x[t] = wte[token(t)] for every step row; one work-group per row. */
    static void embed(KernelContext ctx, ShortArray wte, IntArray meta, int tokensAt, FloatArray x, int d, int ls) {
        int t = ctx.groupIdx;
        if (t < meta.get(StepMeta.ROWS)) {
            int id = meta.get(tokensAt + t);
            for (int i = ctx.localIdx; i < d; i += ls) {
                x.set(t * d + i, Fp16.half(wte.get(id * d + i)));
            }
        }
    }

    /** out[i] = x[logitRow(i)] for the rows whose logits are wanted; one work-group per row. */
    static void gather(KernelContext ctx, FloatArray x, IntArray meta, int rowsAt, FloatArray out, int d, int ls) {
        int i = ctx.groupIdx;
        if (i < meta.get(StepMeta.LOGIT_ROWS)) {
            int row = meta.get(rowsAt + i);
            for (int j = ctx.localIdx; j < d; j += ls) {
                out.set(i * d + j, x.get(row * d + j));
            }
        }
    }
}
