package qwen.gateway.tokenizer;

import java.util.Arrays;

/**
 * tiktoken's byte-pair merge for one pre-tokenised piece (SPEC 4.3 step 3).
 *
 * <p>The rule: start from single bytes and repeatedly merge the adjacent pair whose concatenation
 * has the lowest rank, the leftmost pair on ties, until no adjacent concatenation is a token.
 * tiktoken rescans every pair after each merge, which is quadratic; a piece can be long (a
 * paragraph of Chinese has no spaces and is a single {@code \p{L}+} match), so this class keeps
 * the candidate pairs in a min-heap ordered by (rank, start offset) instead. Popping the heap's
 * minimum is the same choice tiktoken makes, so the output is identical, in O(n log n).
 */
final class BytePairEncoder {

    private final RankTable table;

    BytePairEncoder(RankTable table) {
        this.table = table;
    }

    /** Appends the ranks of {@code piece} to {@code out}. */
    void encode(byte[] piece, IdBuffer out) {
        int n = piece.length;
        int whole = table.rank(piece, 0, n);
        if (whole >= 0) {
            out.add(whole);
            return;
        }
        // Parts form a linked list over their start offsets; next[i] == n ends the list and
        // next[i] == -1 marks an offset that was merged into the part on its left. pairRank[i] is
        // the rank of the part at i joined with its right neighbour, or -1; since a rank names
        // one byte string, a heap entry is current exactly when its rank equals pairRank[start].
        int[] next = new int[n];
        int[] prev = new int[n];
        int[] pairRank = new int[n];
        PairHeap heap = new PairHeap(2 * n);
        for (int i = 0; i < n; i++) {
            next[i] = i + 1;
            prev[i] = i - 1;
            pairRank[i] = i + 1 < n ? table.rank(piece, i, i + 2) : -1;
            heap.pushIfToken(pairRank[i], i);
        }
        while (!heap.isEmpty()) {
            long top = heap.pop();
            int rank = (int) (top >>> 32);
            int start = (int) top;
            if (pairRank[start] != rank) {
                continue; // stale: this pair has since been merged or has grown
            }
            int right = next[start];
            int end = next[right];
            next[start] = end;
            next[right] = -1;
            pairRank[right] = -1;
            pairRank[start] = end < n ? table.rank(piece, start, next[end]) : -1;
            heap.pushIfToken(pairRank[start], start);
            if (end < n) {
                prev[end] = start;
            }
            int left = prev[start];
            if (left >= 0) {
                pairRank[left] = table.rank(piece, left, end);
                heap.pushIfToken(pairRank[left], left);
            }
        }
        for (int i = 0; i < n; i = next[i]) {
            out.add(table.rank(piece, i, next[i]));
        }
    }

    /** A binary min-heap of primitive longs; (rank << 32 | start) sorts by rank, then offset. */
    private static final class PairHeap {
        private long[] items;
        private int size;

        PairHeap(int capacity) {
            items = new long[Math.max(4, capacity)];
        }

        boolean isEmpty() {
            return size == 0;
        }

        /** Adds the pair at {@code start} unless its bytes are not a token (rank -1). */
        void pushIfToken(int rank, int start) {
            if (rank >= 0) {
                push(((long) rank << 32) | start);
            }
        }

        void push(long item) {
            if (size == items.length) {
                items = Arrays.copyOf(items, size * 2);
            }
            int i = size++;
            while (i > 0) {
                int parent = (i - 1) >>> 1;
                if (items[parent] <= item) {
                    break;
                }
                items[i] = items[parent];
                i = parent;
            }
            items[i] = item;
        }

        long pop() {
            long top = items[0];
            long last = items[--size];
            int i = 0;
            while (true) {
                int child = 2 * i + 1;
                if (child >= size) {
                    break;
                }
                if (child + 1 < size && items[child + 1] < items[child]) {
                    child++;
                }
                if (last <= items[child]) {
                    break;
                }
                items[i] = items[child];
                i = child;
            }
            items[i] = last;
            return top;
        }
    }
}
