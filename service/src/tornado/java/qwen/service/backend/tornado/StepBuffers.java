package qwen.service.backend.tornado;

import qwen.service.model.QwenConfig;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

/**
 * The step's device buffers, sized once for {@code maxRows} token rows. Only {@link #meta},
 * {@link #rot} and (on shards after the first) {@link #x} go to the device each step; only the
 * used prefix of {@link #logits} (or of x, on shards before the last) comes back.
 */
final class StepBuffers {

    final StepMeta layout;
    final IntArray meta;        // StepMeta layout
    final FloatArray rot;       // cos [R, half], sin [R, half], logn [R]
    final FloatArray x;         // [R, d] residual stream
    final FloatArray qkv;       // [R, 3d] c_attn output; q rotated in place
    final FloatArray att;       // [R, d] attention output, heads concatenated
    final FloatArray part;      // [attendGroups, 2 + headDim] each attention split's max, sum of exps, output
    final FloatArray hid;       // [R, f] w1 * silu(w2)
    final FloatArray gathered;  // [R, d] rows whose logits are wanted (head shard)
    final FloatArray logits;    // [R, vocab] (head shard)
    final FloatArray none = new FloatArray(1);   // stands in for an absent bias or norm gain
    final FloatArray f16 = Fp16.table();          // the linear kernels' fp16 decode table
    final FloatArray scratch;   // the tensor-core kernels' accumulator tiles (one element without them)

    StepBuffers(QwenConfig cfg, int maxRows, int maxPages, boolean head, boolean tensorCores) {
        int d = cfg.hiddenSize();
        this.layout = new StepMeta(maxRows, maxPages);
        this.meta = new IntArray(layout.size());
        this.rot = new FloatArray(maxRows * cfg.headDim() + maxRows);
        this.x = new FloatArray(maxRows * d);
        this.qkv = new FloatArray(maxRows * cfg.qkvDim());
        this.att = new FloatArray(maxRows * d);
        this.part = new FloatArray(AttentionKernels.partialFloats(maxRows, cfg.numHeads(), cfg.headDim()));
        this.hid = new FloatArray(maxRows * cfg.ffnDim());
        this.gathered = new FloatArray(head ? maxRows * d : 1);
        long logitFloats = head ? (long) maxRows * cfg.vocabSize() : 1;
        if (logitFloats > Integer.MAX_VALUE) {
            throw new IllegalStateException(maxRows + " rows of " + cfg.vocabSize()
                    + " logits exceed one device array; lower qwen.shard.max-step-tokens");
        }
        this.logits = new FloatArray((int) logitFloats);
        this.scratch = new FloatArray(tensorCores ? TensorCoreKernels.scratchFloats() : 1);
    }

    /** Bytes of all step buffers. */
    long bytes() {
        return meta.getNumBytesOfSegment() + rot.getNumBytesOfSegment() + x.getNumBytesOfSegment()
                + qkv.getNumBytesOfSegment() + att.getNumBytesOfSegment() + part.getNumBytesOfSegment()
                + hid.getNumBytesOfSegment() + gathered.getNumBytesOfSegment() + logits.getNumBytesOfSegment()
                + f16.getNumBytesOfSegment() + scratch.getNumBytesOfSegment();
    }

    /** Bytes of the step buffers for a shape, before allocating them. */
    static long bytesFor(QwenConfig cfg, int maxRows, int maxPages, boolean head, boolean tensorCores) {
        long d = cfg.hiddenSize();
        long floats = maxRows * (cfg.headDim() + 1L) + maxRows * (3 * d + cfg.qkvDim() + cfg.ffnDim())
                + (head ? maxRows * (d + (long) cfg.vocabSize()) : 2) + Fp16.TABLE
                + AttentionKernels.partialFloats(maxRows, cfg.numHeads(), cfg.headDim())
                + (tensorCores ? TensorCoreKernels.scratchFloats() : 1);
        return floats * Float.BYTES + (long) new StepMeta(maxRows, maxPages).size() * Integer.BYTES;
    }
}
