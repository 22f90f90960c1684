package qwen.gateway.chat;

import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import qwen.gateway.scheduler.KvEvictor;

/**
 * The engine's ledger of KV on the shards, per sequence id: the exact ids the shards hold for
 * each idle kept sequence (a session between turns), least recently used first, and which
 * sequences are generating now.
 */
final class HeldSequences implements KvEvictor {

    private final LinkedHashMap<String, int[]> idle = new LinkedHashMap<>(16, 0.75f, true);
    private final Set<String> busy = new HashSet<>();

    /** How long a claim waits for a cancelled generation of the same sequence to settle. */
    private static final long SETTLE_WAIT_NANOS = 10_000_000_000L;

    /**
     * Marks the sequence busy and hands over the ids the shards hold for it (empty when none).
     * A generation that was just cancelled settles within one step, so a claim waits for it a
     * while: a session's next turn sent right after a cancel then goes through.
     *
     * @throws GatewayException FAILED_PRECONDITION when the sequence is still generating after the wait
     */
    synchronized int[] claim(String sequenceId) {
        long deadline = System.nanoTime() + SETTLE_WAIT_NANOS;
        while (busy.contains(sequenceId)) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                throw new GatewayException(GatewayException.Kind.FAILED_PRECONDITION, "sequence " + sequenceId
                        + " is already generating; wait for its reply or cancel it first");
            }
            try {
                wait(Math.max(1, left / 1_000_000));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new GatewayException(GatewayException.Kind.UNAVAILABLE, "interrupted while waiting for sequence "
                        + sequenceId);
            }
        }
        busy.add(sequenceId);
        int[] held = idle.remove(sequenceId);
        return held == null ? new int[0] : held;
    }

    /** Ends a claim: the sequence is idle again and the shards hold {@code heldIds} of it. */
    synchronized void settle(String sequenceId, int[] heldIds) {
        busy.remove(sequenceId);
        notifyAll();
        if (heldIds.length > 0) {
            idle.put(sequenceId, heldIds);
        }
    }

    /** Forgets a sequence's idle KV (its owner releases it on the shards). */
    synchronized void forget(String sequenceId) {
        idle.remove(sequenceId);
    }

    /** Idle sequences whose KV the shards keep. */
    synchronized int idleCount() {
        return idle.size();
    }

    /** Their ids, as the shards know them (a copy). */
    synchronized Set<String> idleIds() {
        return new HashSet<>(idle.keySet());
    }

    @Override
    public synchronized String evictOne() {
        Iterator<Map.Entry<String, int[]>> eldest = idle.entrySet().iterator();
        if (!eldest.hasNext()) {
            return null;
        }
        String id = eldest.next().getKey();
        eldest.remove();
        return id;
    }
}
