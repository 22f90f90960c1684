package qwen.gateway.shard;

import java.util.List;
import java.util.Optional;

/**
 * The pipeline replicas a gateway routes sessions over, as readiness and the model card see them.
 * With one replica there is none: {@link PipelineService} answers from its own pipeline.
 */
public interface ReplicaView {

    /** Every replica's state from its last probe, replica 0 first. */
    List<ReplicaState> states();

    /** The pipeline of a replica that is up, or of any connected one when none is; empty when none connected. */
    Optional<Pipeline> anyConnected();

    /** Replica {@code index}'s pipeline if it has connected, without trying to connect. */
    Optional<Pipeline> connected(int index);
}
