package qwen.service.backend.tornado;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import qwen.service.kv.SequenceKv;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;

/**
 * The KV cache on the device: one f32 arena per block of the shard, cut into pages of
 * {@link AttentionKernels#PAGE} positions (keys, then values). A sequence holds the same page ids
 * in every block; its page list travels with each step in the page table. The engine's
 * accounting pool admits sequences against the same byte budget, so pages never run out here
 * when it says yes.
 */
final class DeviceKv {

    private final int pageFloats;
    private final int pages;
    private final List<FloatArray> arenas = new ArrayList<>();
    private final ArrayDeque<Integer> free = new ArrayDeque<>();

    /**
     * @param layers blocks on this shard
     * @param width floats per KV row (heads * headDim)
     * @param budgetBytes the KV budget; whole pages of all blocks that fit in it
     */
    DeviceKv(int layers, int width, long budgetBytes) {
        this.pageFloats = 2 * AttentionKernels.PAGE * width;
        long pageBytes = (long) pageFloats * Float.BYTES * layers;
        long fit = budgetBytes / pageBytes;
        if (fit < 1) {
            throw new IllegalStateException("KV budget of " + budgetBytes + " bytes is below one device page ("
                    + pageBytes + " bytes: " + AttentionKernels.PAGE + " positions of every block)");
        }
        long maxByIndex = Integer.MAX_VALUE / pageFloats;
        this.pages = (int) Math.min(fit, maxByIndex);
        for (int l = 0; l < layers; l++) {
            arenas.add(new FloatArray(pages * pageFloats));
        }
        for (int p = 0; p < pages; p++) {
            free.addLast(p);
        }
    }

    /** Device pages in each arena. */
    int pages() {
        return pages;
    }

    /** Floats per page (keys and values of PAGE positions). */
    int pageFloats() {
        return pageFloats;
    }

    /** The arena of the shard's i-th block. */
    FloatArray arena(int layer) {
        return arenas.get(layer);
    }

    /** Bytes of all arenas. */
    long bytes() {
        return (long) pages * pageFloats * Float.BYTES * arenas.size();
    }

    /** The sequence's pages, attached to its cache so they return here when it is released. */
    SequencePages of(SequenceKv kv) {
        if (kv.attachment() instanceof SequencePages p) {
            return p;
        }
        SequencePages p = new SequencePages();
        kv.attach(p);
        return p;
    }

    /** One sequence's device pages, in position order. */
    final class SequencePages implements AutoCloseable {
        private final List<Integer> ids = new ArrayList<>();

        /** Holds exactly the pages {@code positions} positions need: takes or returns pages. */
        void fit(int positions) {
            int needed = (positions + AttentionKernels.PAGE - 1) / AttentionKernels.PAGE;
            while (ids.size() > needed) {
                free.addFirst(ids.removeLast());
            }
            while (ids.size() < needed) {
                Integer page = free.pollFirst();
                if (page == null) {
                    throw new IllegalStateException("device KV pages exhausted (" + pages + " pages)");
                }
                ids.add(page);
            }
        }

        int page(int index) {
            return ids.get(index);
        }

        int count() {
            return ids.size();
        }

        @Override
        public void close() {
            fit(0);
        }
    }
}
