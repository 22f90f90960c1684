package qwen.gateway.tokenizer;

import java.util.Arrays;

/** A growable list of token ids, so encoding does not box every id into an Integer. */
final class IdBuffer {

    private int[] ids;
    private int size;

    IdBuffer(int initialCapacity) {
        ids = new int[Math.max(8, initialCapacity)];
    }

    void add(int id) {
        if (size == ids.length) {
            ids = Arrays.copyOf(ids, ids.length * 2);
        }
        ids[size++] = id;
    }

    int[] toArray() {
        return Arrays.copyOf(ids, size);
    }
}
