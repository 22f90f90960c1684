package qwen.service.kv;

/** The KV cache of one sequence on one shard: one {@link LayerKv} per block the shard holds. */
public final class SequenceKv implements AutoCloseable {

    private final LayerKv[] layers;
    private double ntkAlpha = 1.0;
    private AutoCloseable attachment;

    SequenceKv(LayerKv[] layers) {
        this.layers = layers;
    }

    /** The cache of the shard's i-th block (0 = the first block of its range). */
    public LayerKv layer(int i) {
        return layers[i];
    }

    /** Positions held (the same in every block once a step has finished). */
    public int length() {
        return layers.length == 0 ? 0 : layers[0].length();
    }

    /**
     * The dynamic-NTK alpha fixed when the sequence was prefilled (SPEC 3.5): cached keys were
     * rotated with it, so every later step of the sequence must use it too.
     */
    public double ntkAlpha() {
        return ntkAlpha;
    }

    /** Sets the alpha; called when position 0 is (re)computed. */
    public void ntkAlpha(double alpha) {
        this.ntkAlpha = alpha;
    }

    /** Drops positions from {@code newLength} on in every block. */
    public void truncate(int newLength) {
        for (LayerKv kv : layers) {
            kv.truncate(newLength);
        }
    }

    /**
     * What a backend keeps for this sequence beside the pool's pages (its device pages, say);
     * null when nothing. Closed with the sequence.
     */
    public AutoCloseable attachment() {
        return attachment;
    }

    /** Sets the backend's per-sequence state; see {@link #attachment()}. */
    public void attach(AutoCloseable state) {
        this.attachment = state;
    }

    /** Returns all pages to the pool and closes the attachment. */
    @Override
    public void close() {
        for (LayerKv kv : layers) {
            kv.release();
        }
        if (attachment != null) {
            try {
                attachment.close();
            } catch (Exception e) {
                throw new IllegalStateException("releasing a sequence's device cache", e);
            }
            attachment = null;
        }
    }
}
