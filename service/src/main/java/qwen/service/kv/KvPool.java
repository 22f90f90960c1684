package qwen.service.kv;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;

/**
 * The shard's KV memory: fixed-size off-heap pages handed to sequences and recycled when they
 * are released, within a byte budget. A page holds {@link #PAGE_TOKENS} rows of one block's keys
 * (or values). Pages are never returned to the operating system, so steady-state serving
 * allocates nothing.
 */
public final class KvPool {

    /** Positions per page. */
    public static final int PAGE_TOKENS = 64;

    private final int width;
    private final boolean hostMemory;
    private final long pageBytes;
    private final long maxPages;
    private final Arena arena = Arena.ofShared();
    private final ArrayDeque<MemorySegment> free = new ArrayDeque<>();
    private long pagesInUse;
    private long pagesAllocated;

    /**
     * @param width floats per KV row (heads * headDim)
     * @param budgetBytes most bytes of pages this pool may hold at once
     */
    public KvPool(int width, long budgetBytes) {
        this(width, budgetBytes, true);
    }

    /**
     * A pool that only counts pages: for backends that keep the cache in their own memory (a GPU),
     * so that admission against the budget works the same for every backend. Its pages have no
     * host memory ({@link MemorySegment#NULL}).
     */
    public static KvPool accountingOnly(int width, long budgetBytes) {
        return new KvPool(width, budgetBytes, false);
    }

    private KvPool(int width, long budgetBytes, boolean hostMemory) {
        this.width = width;
        this.hostMemory = hostMemory;
        this.pageBytes = (long) PAGE_TOKENS * width * Float.BYTES;
        this.maxPages = budgetBytes / pageBytes;
        if (maxPages < 2) {
            throw new IllegalArgumentException("KV budget of " + budgetBytes + " bytes holds less than one position");
        }
    }

    /** A new, empty cache for one sequence over {@code layers} blocks. */
    public SequenceKv newSequence(int layers) {
        LayerKv[] kvs = new LayerKv[layers];
        for (int i = 0; i < layers; i++) {
            kvs[i] = new LayerKv(this, width);
        }
        return new SequenceKv(kvs);
    }

    synchronized MemorySegment take() {
        if (pagesInUse >= maxPages) {
            throw new KvBudgetExceededException("KV budget exhausted: " + pagesInUse + " pages of "
                    + pageBytes + " bytes in use, limit " + maxPages);
        }
        pagesInUse++;
        if (!hostMemory) {
            return MemorySegment.NULL;
        }
        MemorySegment page = free.pollFirst();
        if (page == null) {
            pagesAllocated++;
            page = arena.allocate(pageBytes, 64);
        }
        return page;
    }

    synchronized void give(MemorySegment page) {
        pagesInUse--;
        if (hostMemory) {
            free.addFirst(page);
        }
    }

    /** Bytes of one page: {@link #PAGE_TOKENS} rows of keys (or values) of one block. */
    public long pageBytes() {
        return pageBytes;
    }

    /** Pages a cache of {@code positions} positions over {@code layers} blocks occupies (K and V). */
    public static long pagesFor(int positions, int layers) {
        return (long) (positions + PAGE_TOKENS - 1) / PAGE_TOKENS * 2L * layers;
    }

    /** Pages not held by any sequence. */
    public synchronized long freePages() {
        return maxPages - pagesInUse;
    }

    /** Bytes of pages now held by sequences. */
    public synchronized long bytesInUse() {
        return pagesInUse * pageBytes;
    }

    /** The configured budget, rounded down to whole pages. */
    public long budgetBytes() {
        return maxPages * pageBytes;
    }

    /** How many more token positions of a whole sequence over {@code layers} blocks fit now. */
    public synchronized long freeTokens(int layers) {
        return (maxPages - pagesInUse) / (2L * layers) * PAGE_TOKENS;
    }

    /** Total positions (over {@code layers} blocks, K and V) the whole budget holds. */
    public long capacityTokens(int layers) {
        return maxPages / (2L * layers) * PAGE_TOKENS;
    }
}
