package qwen.gateway.tokenizer;

import java.util.Arrays;

/**
 * The regular (non-special) vocabulary: token bytes by rank, and rank by token bytes.
 *
 * <p>Lookups take a range of a byte array so the byte-pair merge can ask "is bytes[from, to) a
 * token?" without copying the range. The table is open addressing; a slot packs the key's hash
 * with its rank in one long, so a probe costs one memory access and most mismatches are rejected
 * without comparing bytes. Immutable after construction, so it is safe to share between threads.
 */
final class RankTable {

    private static final long EMPTY = -1L; // its low half, -1, is no rank

    private final byte[][] tokens; // [rank] -> raw token bytes
    private final long[] slots; // [capacity] -> hash << 32 | rank, or EMPTY
    private final int mask;

    /**
     * @param tokens raw bytes of every token, indexed by rank; must hold no duplicates
     * @throws IllegalArgumentException if two ranks share the same bytes
     */
    RankTable(byte[][] tokens) {
        this.tokens = tokens;
        // Keep the load factor at or below 0.5 so probe chains stay short.
        int capacity = Integer.highestOneBit(Math.max(2, tokens.length) * 2) << 1;
        this.mask = capacity - 1;
        this.slots = new long[capacity];
        Arrays.fill(slots, EMPTY);
        for (int rank = 0; rank < tokens.length; rank++) {
            insert(rank);
        }
    }

    /** Number of regular tokens; ranks run from 0 to {@code size() - 1}. */
    int size() {
        return tokens.length;
    }

    /** The token's raw bytes; the caller must not modify the returned array. */
    byte[] bytes(int rank) {
        return tokens[rank];
    }

    /** Rank of {@code bytes[from, to)}, or -1 when that byte string is not a token. */
    int rank(byte[] bytes, int from, int to) {
        int hash = hash(bytes, from, to);
        for (int slot = hash & mask; ; slot = (slot + 1) & mask) {
            long entry = slots[slot];
            if (entry == EMPTY) {
                return -1;
            }
            int rank = (int) entry;
            if ((int) (entry >>> 32) == hash
                    && Arrays.equals(tokens[rank], 0, tokens[rank].length, bytes, from, to)) {
                return rank;
            }
        }
    }

    private void insert(int rank) {
        byte[] key = tokens[rank];
        int hash = hash(key, 0, key.length);
        int slot = hash & mask;
        while (slots[slot] != EMPTY) {
            int other = (int) slots[slot];
            if (Arrays.equals(tokens[other], key)) {
                throw new IllegalArgumentException(
                        "ranks " + other + " and " + rank + " have the same token bytes");
            }
            slot = (slot + 1) & mask;
        }
        slots[slot] = ((long) hash << 32) | rank;
    }

    /** FNV-1a followed by a murmur3 finaliser, so the low bits used for the slot are well mixed. */
    private static int hash(byte[] bytes, int from, int to) {
        int h = 0x811c9dc5;
        for (int i = from; i < to; i++) {
            h = (h ^ (bytes[i] & 0xff)) * 0x01000193;
        }
        h ^= h >>> 16;
        h *= 0x85ebca6b;
        h ^= h >>> 13;
        h *= 0xc2b2ae35;
        return h ^ (h >>> 16);
    }
}
