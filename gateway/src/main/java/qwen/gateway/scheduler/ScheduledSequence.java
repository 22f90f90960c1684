package qwen.gateway.scheduler;

import java.util.Arrays;
import java.util.Objects;
import qwen.proto.shard.v1.SamplingParams;

/**
 * One sequence in the scheduler: its ids (prompt, then each generated token as it is accepted),
 * the positions the shards hold, and whom to tell. Only the loop thread touches the state;
 * {@link #cancel()} may be called from any thread.
 */
public final class ScheduledSequence {

    private final String sequenceId;
    private final boolean keepKv;
    private final SamplingParams sampling;
    private final long reservedTokens;
    private final SequenceListener listener;
    private volatile boolean cancelled;
    private volatile Runnable wakeUp = () -> { };

    // Loop thread only.
    private int[] ids;
    private int length;
    private int held;
    private int retries;
    private boolean scheduled;

    /**
     * @param sequenceId the KV identity on the shards
     * @param promptIds the prompt, at least one id
     * @param heldPositions prompt positions the shards already hold for this sequence (a reused
     *     prefix), below {@code promptIds.length} so that at least one token is computed
     * @param keepKv keep the KV when the sequence ends (a session), or release it
     * @param sampling how the last shard samples
     * @param reservedTokens KV positions to reserve while it runs (prompt plus the most it may generate)
     */
    public ScheduledSequence(String sequenceId, int[] promptIds, int heldPositions, boolean keepKv,
                             SamplingParams sampling, long reservedTokens, SequenceListener listener) {
        this.sequenceId = Objects.requireNonNull(sequenceId, "sequenceId");
        if (promptIds.length == 0) {
            throw new IllegalArgumentException("the prompt of " + sequenceId + " is empty");
        }
        if (heldPositions < 0 || heldPositions >= promptIds.length) {
            throw new IllegalArgumentException("held positions " + heldPositions + " outside [0, "
                    + promptIds.length + ") for " + sequenceId);
        }
        this.ids = Arrays.copyOf(promptIds, promptIds.length + 16);
        this.length = promptIds.length;
        this.held = heldPositions;
        this.keepKv = keepKv;
        this.sampling = Objects.requireNonNull(sampling, "sampling");
        this.reservedTokens = reservedTokens;
        this.listener = Objects.requireNonNull(listener, "listener");
    }

    public String sequenceId() {
        return sequenceId;
    }

    /** Ends the sequence before its next step; its KV is released unless it is kept. */
    public void cancel() {
        cancelled = true;
        wakeUp.run();
    }

    public boolean cancelled() {
        return cancelled;
    }

    void wakeUpWith(Runnable wakeUp) {
        this.wakeUp = wakeUp;
    }

    boolean keepKv() {
        return keepKv;
    }

    SamplingParams sampling() {
        return sampling;
    }

    long reservedTokens() {
        return reservedTokens;
    }

    SequenceListener listener() {
        return listener;
    }

    /** Ids not yet in the shards' KV: the rest of the prompt, or the last sampled token. */
    int pending() {
        return length - held;
    }

    int held() {
        return held;
    }

    void held(int positions) {
        held = positions;
    }

    int[] ids(int from, int to) {
        return Arrays.copyOfRange(ids, from, to);
    }

    int length() {
        return length;
    }

    void append(int id) {
        if (length == ids.length) {
            ids = Arrays.copyOf(ids, ids.length * 2);
        }
        ids[length++] = id;
    }

    /** Counts a KV loss; returns how many in a row since the last progress. */
    int retried() {
        return ++retries;
    }

    void progressed() {
        retries = 0;
    }

    /** True the first time it is called. */
    boolean firstSchedule() {
        boolean first = !scheduled;
        scheduled = true;
        return first;
    }
}
