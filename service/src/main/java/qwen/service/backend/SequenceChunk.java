package qwen.service.backend;

import qwen.service.kv.SequenceKv;

/**
 * One sequence's share of a step: {@code tokens} consecutive positions starting at
 * {@code startPos}, given as token ids (shards holding the embedding) or as the previous
 * shard's hidden rows.
 *
 * @param kv the sequence's cache on this shard; must hold exactly startPos positions
 * @param startPos absolute position of the first row
 * @param tokenIds the chunk's token ids (length = tokens); always present
 * @param hiddenIn tokens rows of hidden_size floats from the previous shard; null on the first shard
 * @param prefillLength length of the whole prompt when startPos is 0 (fixes the dynamic-NTK alpha,
 *     SPEC 3.5); the chunk length when the prompt arrives in one chunk
 * @param wantLogits whether the head (last shard only) should produce logits for the last row
 */
public record SequenceChunk(
        SequenceKv kv,
        int startPos,
        int[] tokenIds,
        float[] hiddenIn,
        int prefillLength,
        boolean wantLogits) {

    /** Rows in this chunk. */
    public int tokens() {
        return tokenIds.length;
    }
}
