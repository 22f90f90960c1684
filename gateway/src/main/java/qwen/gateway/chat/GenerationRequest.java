package qwen.gateway.chat;

/**
 * One generation for the engine: a prompt already turned into ids, and how to continue it.
 *
 * @param requestId unique id of this request (client-chosen or assigned); Cancel uses it
 * @param sessionId the session this turn belongs to, or null for a stateless request (reported only)
 * @param sequenceId the KV identity on the shards: a session's stable id, so its next turn reuses the
 *     positions the shards still hold, or a fresh id for a stateless request
 * @param keepKv keep the KV on the shards after the turn (sessions), or release it (stateless)
 * @param promptIds the whole prompt (ChatML context or raw completion prompt)
 * @param settings resolved generation settings
 */
public record GenerationRequest(
        String requestId,
        String sessionId,
        String sequenceId,
        boolean keepKv,
        int[] promptIds,
        GenerationSettings settings) {
}
