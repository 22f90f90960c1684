package qwen.gateway.chat;

import io.smallrye.mutiny.Multi;
import java.util.Set;

/**
 * The gateway's generation engine as the adapters see it: start a generation, cancel it, drop a
 * session's KV. Implemented over the shard pipeline and the step scheduler.
 */
public interface Generations {

    /**
     * Starts generating when subscribed. Cancelling the subscription stops generation within one
     * step and frees the KV of a stateless request. Fails with {@link GatewayException}
     * (RESOURCE_EXHAUSTED when the queue is full, UNAVAILABLE when a shard is down,
     * ALREADY_EXISTS when the request id is in use).
     */
    Multi<GenerationEvent> generate(GenerationRequest request);

    /** Cancels a request running on this gateway; false when none here has that id. */
    boolean cancel(String requestId);

    /**
     * Cancels a running request wherever it runs: on this gateway, or where the gateways share a
     * networked session store, on the gateway that runs it. Blocks until the outcome is known.
     */
    default CancelOutcome cancelAnywhere(String requestId) {
        return cancel(requestId) ? CancelOutcome.CANCELLED : CancelOutcome.NOT_FOUND;
    }

    /** Frees whatever KV the shards hold for a sequence (a deleted session). */
    void release(String sequenceId);

    /** Requests admitted but waiting to start (the bounded queue); 0 before the shards are connected. */
    int queuedRequests();

    /** Sequences in the running batch; 0 before the shards are connected. */
    int runningSequences();

    /** Idle kept sequences (sessions between turns) whose KV the shards hold, the candidates for eviction. */
    int idleSequences();

    /**
     * The ids of those idle kept sequences, as requests name them ({@link GenerationRequest#sequenceId}):
     * where gateways share a session store, a session deleted through another gateway leaves its KV
     * here, and this is how the owner finds it.
     */
    Set<String> idleSequenceIds();
}
