package qwen.gateway.scheduler;

import qwen.gateway.chat.GatewayException;
import qwen.proto.shard.v1.SampledToken;

/**
 * What a scheduled sequence tells its owner. Every method runs on the scheduler's loop thread and
 * must return quickly: hand anything slow (a client write, a session save) to another thread.
 */
public interface SequenceListener {

    /** The sequence joined a step for the first time: its queue wait is over. */
    void onScheduled();

    /**
     * The last shard drew the next token.
     *
     * @return true to go on (the token becomes the next input), false to end the sequence here
     */
    boolean onToken(SampledToken token);

    /**
     * The sequence left the scheduler; called exactly once.
     *
     * @param heldIds the ids whose KV the shards hold for the sequence now, exactly (empty when its
     *     KV was released); sessions keep them to reuse the prefix in their next turn
     * @param cancelled it ended because of {@link ScheduledSequence#cancel()}
     * @param failure why it failed, or null when it finished or was cancelled
     */
    void onEnded(int[] heldIds, boolean cancelled, GatewayException failure);
}
