package qwen.service.kv;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * Post-RoPE keys and values of one block for one sequence, f32, off the heap, in pages of
 * {@link KvPool#PAGE_TOKENS} positions taken from a {@link KvPool}. Row p (all heads of
 * position p, head h at columns h * headDim ..) of keys lives in
 * {@code keyPage(p / PAGE_TOKENS)} at float offset {@code (p % PAGE_TOKENS) * width}; values
 * likewise.
 */
public final class LayerKv {

    private final KvPool pool;
    private final int width;
    private final List<MemorySegment> keyPages = new ArrayList<>();
    private final List<MemorySegment> valuePages = new ArrayList<>();
    private int length;

    LayerKv(KvPool pool, int width) {
        this.pool = pool;
        this.width = width;
    }

    /** Positions held: 0 .. length() - 1. */
    public int length() {
        return length;
    }

    /** Floats per row: heads * headDim. */
    public int width() {
        return width;
    }

    /** The page holding key rows [page * PAGE_TOKENS, (page + 1) * PAGE_TOKENS). */
    public MemorySegment keyPage(int page) {
        return keyPages.get(page);
    }

    /** The page holding value rows [page * PAGE_TOKENS, (page + 1) * PAGE_TOKENS). */
    public MemorySegment valuePage(int page) {
        return valuePages.get(page);
    }

    /** Key element {@code col} of position {@code pos}. */
    public float key(int pos, int col) {
        return keyPages.get(pos / KvPool.PAGE_TOKENS)
                .getAtIndex(ValueLayout.JAVA_FLOAT, (long) (pos % KvPool.PAGE_TOKENS) * width + col);
    }

    /** Value element {@code col} of position {@code pos}. */
    public float value(int pos, int col) {
        return valuePages.get(pos / KvPool.PAGE_TOKENS)
                .getAtIndex(ValueLayout.JAVA_FLOAT, (long) (pos % KvPool.PAGE_TOKENS) * width + col);
    }

    /**
     * Writes the key and value rows of position {@code pos}, which must be length() (append) or
     * lower (overwrite of a position being recomputed). Rows are read from src arrays at the given
     * float offsets.
     */
    public void put(int pos, float[] k, int kOffset, float[] v, int vOffset) {
        if (pos > length) {
            throw new IllegalStateException("KV append at position " + pos + " but only " + length + " held");
        }
        int page = pos / KvPool.PAGE_TOKENS;
        while (keyPages.size() <= page) {
            keyPages.add(pool.take());
            valuePages.add(pool.take());
        }
        long at = (long) (pos % KvPool.PAGE_TOKENS) * width * Float.BYTES;
        MemorySegment.copy(k, kOffset, keyPages.get(page), ValueLayout.JAVA_FLOAT, at, width);
        MemorySegment.copy(v, vOffset, valuePages.get(page), ValueLayout.JAVA_FLOAT, at, width);
        length = Math.max(length, pos + 1);
    }

    /**
     * Claims positions up to {@code newLength} without writing them: for backends whose cache
     * lives in device memory and that only need the budget accounting of the pool.
     */
    public void reserve(int newLength) {
        int pages = (newLength + KvPool.PAGE_TOKENS - 1) / KvPool.PAGE_TOKENS;
        while (keyPages.size() < pages) {
            keyPages.add(pool.take());
            valuePages.add(pool.take());
        }
        length = Math.max(length, newLength);
    }

    /** Forgets positions from {@code newLength} on, returning whole pages no longer needed. */
    public void truncate(int newLength) {
        if (newLength >= length) {
            return;
        }
        int pagesNeeded = (newLength + KvPool.PAGE_TOKENS - 1) / KvPool.PAGE_TOKENS;
        while (keyPages.size() > pagesNeeded) {
            pool.give(keyPages.removeLast());
            pool.give(valuePages.removeLast());
        }
        length = newLength;
    }

    /** Returns every page to the pool. */
    void release() {
        truncate(0);
    }
}
