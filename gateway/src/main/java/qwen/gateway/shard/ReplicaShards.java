package qwen.gateway.shard;

import java.util.List;

/**
 * One pipeline replica as GetModelInfo shows it: its health and its shards as they answered just
 * now (empty when the replica never connected, so its layers are unknown).
 */
public record ReplicaShards(ReplicaState state, List<ModelCard.ShardDescription> shards) {

    public ReplicaShards {
        shards = List.copyOf(shards);
    }
}
