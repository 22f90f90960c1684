package qwen.service.backend;

/**
 * What a step produced for one chunk.
 *
 * @param hidden tokens rows of hidden_size floats for the next shard; null on the last shard
 * @param logits vocab_size raw logits of the chunk's last row; null unless the shard holds the
 *     head and the chunk asked for them
 */
public record ChunkOutput(float[] hidden, float[] logits) {
}
