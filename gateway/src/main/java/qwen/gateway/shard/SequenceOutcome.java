package qwen.gateway.shard;

import qwen.proto.shard.v1.SampledToken;
import qwen.proto.shard.v1.SequenceErrorCode;

/** What one pipeline step did for one sequence. */
public sealed interface SequenceOutcome {

    String sequenceId();

    /** The entry's positions are in every shard's KV; nothing was sampled (a non-final prefill chunk). */
    record Stored(String sequenceId, int heldPositions) implements SequenceOutcome {
    }

    /** The entry's positions are in every shard's KV, and the last shard drew {@code token}. */
    record Sampled(String sequenceId, int heldPositions, SampledToken token) implements SequenceOutcome {
    }

    /**
     * A shard failed this sequence alone; later shards did not see it.
     *
     * @param heldPositions the positions the failing shard still holds (where to resume)
     * @param shard the failing shard's address
     */
    record Failed(String sequenceId, SequenceErrorCode code, String message, int heldPositions, String shard)
            implements SequenceOutcome {
    }
}
