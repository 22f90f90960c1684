package qwen.service.model;

/**
 * Which part of the model a shard holds: blocks {@code first} (inclusive) to {@code end}
 * (exclusive), plus the token embedding and/or the head (ln_f + lm_head).
 *
 * @param first first block index, 0-based
 * @param end one past the last block index
 * @param embedding whether this shard holds transformer.wte and takes token ids
 * @param head whether this shard holds ln_f and lm_head and returns logits
 */
public record LayerRange(int first, int end, boolean embedding, boolean head) {

    public LayerRange {
        if (first < 0 || end < first) {
            throw new IllegalArgumentException("layer range " + first + ".." + end + " is empty or negative");
        }
    }

    /** The whole model: every block, the embedding and the head. */
    public static LayerRange whole(int numLayers) {
        return new LayerRange(0, numLayers, true, true);
    }

    /**
     * Parses "i-j" (inclusive block indices, as operators write them, e.g. "0-11" and "12-23").
     * The first block range gets the embedding and the one ending at the last block the head.
     */
    public static LayerRange parse(String text, int numLayers) {
        String[] parts = text.trim().split("-");
        if (parts.length != 2) {
            throw new IllegalArgumentException("layer range '" + text + "' must look like 0-23");
        }
        int first;
        int last;
        try {
            first = Integer.parseInt(parts[0].trim());
            last = Integer.parseInt(parts[1].trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("layer range '" + text + "' must look like 0-23");
        }
        if (first < 0 || last < first || last >= numLayers) {
            throw new IllegalArgumentException("layer range '" + text + "' is outside the model's blocks 0-"
                    + (numLayers - 1));
        }
        return new LayerRange(first, last + 1, first == 0, last == numLayers - 1);
    }

    /** Number of blocks held. */
    public int size() {
        return end - first;
    }

    @Override
    public String toString() {
        return first + "-" + (end - 1) + (embedding ? " +wte" : "") + (head ? " +head" : "");
    }
}
