package qwen.service.sampling;

import java.util.function.IntConsumer;

/**
 * The distinct token ids a sequence has contained (prompt and generated), for the repetition
 * penalty. A bit set over the vocabulary plus the list of set ids, so visiting them costs the
 * number of distinct ids, not the vocabulary size.
 */
public final class SeenTokens {

    private final long[] bits;
    private int[] ids = new int[64];
    private int count;

    public SeenTokens(int vocabSize) {
        bits = new long[(vocabSize + 63) >>> 6];
    }

    /** Records an id; ids outside the vocabulary are ignored. */
    public void add(int id) {
        if (id < 0 || (id >>> 6) >= bits.length) {
            return;
        }
        long mask = 1L << id;
        if ((bits[id >>> 6] & mask) != 0) {
            return;
        }
        bits[id >>> 6] |= mask;
        if (count == ids.length) {
            ids = java.util.Arrays.copyOf(ids, count * 2);
        }
        ids[count++] = id;
    }

    public void addAll(int[] tokenIds) {
        for (int id : tokenIds) {
            add(id);
        }
    }

    public boolean contains(int id) {
        return id >= 0 && (id >>> 6) < bits.length && (bits[id >>> 6] & (1L << id)) != 0;
    }

    /** Number of distinct ids. */
    public int size() {
        return count;
    }

    public void forEachDistinct(IntConsumer action) {
        for (int i = 0; i < count; i++) {
            action.accept(ids[i]);
        }
    }
}
