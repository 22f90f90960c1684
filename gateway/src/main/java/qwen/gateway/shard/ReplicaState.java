package qwen.gateway.shard;

import java.util.List;

/**
 * One pipeline replica's health as the gateway last probed it.
 *
 * @param index the replica's number, 0 first
 * @param shards its shards' addresses, in pipeline order
 * @param up whether every one of its shards answered the last probe
 * @param problem why it is not up (empty when it is)
 */
public record ReplicaState(int index, List<String> shards, boolean up, String problem) {

    public ReplicaState {
        shards = List.copyOf(shards);
    }

    /** "up", or "down: " and the reason: what the readiness check shows for this replica. */
    public String describe() {
        return up ? "up" : "down: " + problem;
    }
}
