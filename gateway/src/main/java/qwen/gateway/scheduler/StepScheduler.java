package qwen.gateway.scheduler;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.jboss.logging.Logger;
import qwen.gateway.chat.GatewayException;
import qwen.gateway.shard.Pipeline;
import qwen.gateway.shard.SequenceOutcome;
import qwen.gateway.shard.SequenceWork;
import qwen.gateway.shard.ShardException;

/**
 * Continuous batching over the pipeline. One loop thread (never a Vert.x event loop) forms one batch
 * per step from every running sequence: each decoding sequence's next token, then prefill chunks of
 * the prompts still being read, in arrival order, within {@code maxStepTokens} (chunked prefill: a
 * long prompt advances one chunk per step and samples only on its last chunk).
 *
 * <p>Between steps the loop applies submissions, releases and cancellations. A sequence whose KV a
 * shard lost (FAILED_PRECONDITION) is prefilled again from the positions that shard still holds,
 * unseen by its owner; a shard that fails a whole step fails that step's sequences with
 * UNAVAILABLE. Requests beyond {@code maxQueuedRequests} waiting to start are refused at once with
 * RESOURCE_EXHAUSTED.
 */
public final class StepScheduler implements AutoCloseable {

    /**
     * @param maxStepTokens tokens per step over all sequences (config and shards' limit, whichever is lower)
     * @param maxQueuedRequests requests that may wait to start
     * @param kvCapacityTokens KV positions the shards hold at once; admission reserves each sequence's
     *     prompt plus its most new tokens against it
     * @param kvPageTokens the shards allocate KV in pages of this many positions per sequence, so a
     *     reservation is rounded up to a whole number of pages
     */
    public record Options(int maxStepTokens, int maxQueuedRequests, long kvCapacityTokens, int kvPageTokens) {

        public Options {
            if (maxStepTokens < 1 || maxQueuedRequests < 1 || kvCapacityTokens < 1 || kvPageTokens < 1) {
                throw new IllegalArgumentException("scheduler options must be positive: " + maxStepTokens + ", "
                        + maxQueuedRequests + ", " + kvCapacityTokens + ", " + kvPageTokens);
            }
        }

        /** Options for shards that allocate KV position by position. */
        public Options(int maxStepTokens, int maxQueuedRequests, long kvCapacityTokens) {
            this(maxStepTokens, maxQueuedRequests, kvCapacityTokens, 1);
        }
    }

    private static final Logger LOG = Logger.getLogger(StepScheduler.class);

    /** KV losses in a row, without progress, after which a sequence fails instead of re-prefilling. */
    private static final int MAX_KV_LOSSES = 3;

    private sealed interface Command {
        record Submit(ScheduledSequence sequence) implements Command {
        }

        record Release(String sequenceId) implements Command {
        }

        record Wake() implements Command {
        }
    }

    private static final Command WAKE = new Command.Wake();

    private final Pipeline pipeline;
    private final Options options;
    private final KvEvictor evictor;
    private final LinkedBlockingQueue<Command> commands = new LinkedBlockingQueue<>();
    private final AtomicInteger waitingCount = new AtomicInteger();
    private final Thread loop;
    private volatile boolean closing;
    private volatile int runningCount;
    private volatile long reservedCount;

    // Loop thread only.
    private final ArrayDeque<ScheduledSequence> waiting = new ArrayDeque<>();
    private final List<ScheduledSequence> running = new ArrayList<>();
    private final Set<String> releases = new LinkedHashSet<>();
    private final List<Runnable> endings = new ArrayList<>(); // owners to tell, after the releases
    private final BatchFormer batches;
    private long reserved;

    /** Starts the loop thread. */
    public StepScheduler(Pipeline pipeline, Options options, KvEvictor evictor) {
        this.pipeline = pipeline;
        this.options = options;
        this.evictor = evictor;
        this.batches = new BatchFormer(options.maxStepTokens());
        this.loop = Thread.ofPlatform().name("qwen-step-scheduler").daemon().unstarted(this::run);
        loop.start();
    }

    /**
     * Queues a sequence; it starts when running sequences leave room.
     *
     * @throws GatewayException RESOURCE_EXHAUSTED when {@code maxQueuedRequests} are already waiting,
     *     UNAVAILABLE when the scheduler is closed
     */
    public void submit(ScheduledSequence sequence) {
        if (closing) {
            throw new GatewayException(GatewayException.Kind.UNAVAILABLE, "the gateway is shutting down");
        }
        if (waitingCount.incrementAndGet() > options.maxQueuedRequests()) {
            waitingCount.decrementAndGet();
            throw new GatewayException(GatewayException.Kind.RESOURCE_EXHAUSTED, "the gateway is busy: "
                    + options.maxQueuedRequests() + " requests are already waiting to start; retry later");
        }
        sequence.wakeUpWith(() -> commands.offer(WAKE));
        commands.offer(new Command.Submit(sequence));
    }

    /**
     * Frees a sequence's KV on every shard, before the next step; a sequence of that id still
     * running is cancelled first.
     */
    public void release(String sequenceId) {
        commands.offer(new Command.Release(sequenceId));
    }

    /** Requests waiting to start. */
    public int queuedRequests() {
        return waitingCount.get();
    }

    /** Sequences in the running batch. */
    public int runningSequences() {
        return runningCount;
    }

    /** Stops the loop; sequences still running or waiting fail with UNAVAILABLE. */
    @Override
    public void close() {
        closing = true;
        commands.offer(WAKE);
        try {
            loop.join(TimeUnit.SECONDS.toMillis(2));
            if (loop.isAlive()) {
                loop.interrupt(); // abandons a step in flight
                loop.join(TimeUnit.SECONDS.toMillis(10));
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void run() {
        try {
            while (!closing) {
                try {
                    iterate();
                } catch (InterruptedException e) {
                    break;
                } catch (RuntimeException | Error e) {
                    LOG.error("scheduler step failed; failing its sequences", e);
                    for (ScheduledSequence sequence : List.copyOf(running)) {
                        end(sequence, false, new GatewayException(GatewayException.Kind.INTERNAL,
                                "the gateway failed: " + e), true);
                    }
                    flushReleases();
                }
            }
        } finally {
            shutDown();
        }
    }

    private void iterate() throws InterruptedException {
        Command command = running.isEmpty() && waiting.isEmpty() ? commands.take() : commands.poll();
        for (; command != null; command = commands.poll()) {
            apply(command);
        }
        for (ScheduledSequence sequence : List.copyOf(waiting)) {
            if (sequence.cancelled()) {
                end(sequence, true, null, false);
            }
        }
        for (ScheduledSequence sequence : List.copyOf(running)) {
            if (sequence.cancelled()) {
                end(sequence, true, null, false);
            }
        }
        admit();
        flushReleases();
        if (running.isEmpty() || closing) {
            return;
        }
        List<ScheduledSequence> members = new ArrayList<>();
        List<SequenceWork> batch = batches.form(running, members);
        for (ScheduledSequence member : members) {
            if (member.firstSchedule()) {
                member.listener().onScheduled();
            }
        }
        List<SequenceOutcome> outcomes;
        try {
            outcomes = pipeline.step(batch);
        } catch (ShardException e) {
            failBatch(members, e);
            flushReleases();
            return;
        }
        for (int i = 0; i < members.size(); i++) {
            dispatch(members.get(i), batch.get(i), outcomes.get(i));
        }
        flushReleases();
    }

    private void apply(Command command) {
        switch (command) {
            case Command.Submit submit -> waiting.add(submit.sequence());
            case Command.Release release -> {
                for (ScheduledSequence sequence : List.copyOf(running)) {
                    if (sequence.sequenceId().equals(release.sequenceId())) {
                        end(sequence, true, null, true);
                    }
                }
                for (ScheduledSequence sequence : List.copyOf(waiting)) {
                    if (sequence.sequenceId().equals(release.sequenceId())) {
                        end(sequence, true, null, true);
                    }
                }
                releases.add(release.sequenceId());
            }
            case Command.Wake wake -> {
            }
        }
    }

    private void admit() {
        while (!waiting.isEmpty()) {
            ScheduledSequence next = waiting.peek();
            long need = reservation(next);
            boolean room = running.size() < options.maxStepTokens() && reserved + need <= options.kvCapacityTokens();
            if (!running.isEmpty() && !room) {
                break;
            }
            waiting.poll();
            waitingCount.decrementAndGet();
            running.add(next);
            reserved += need;
        }
        runningCount = running.size();
        reservedCount = reserved;
    }

    private void dispatch(ScheduledSequence sequence, SequenceWork work, SequenceOutcome outcome) {
        int after = work.startPosition() + work.tokenIds().length;
        switch (outcome) {
            case SequenceOutcome.Stored stored -> {
                sequence.held(after);
                sequence.progressed();
            }
            case SequenceOutcome.Sampled sampled -> {
                sequence.held(after);
                sequence.progressed();
                boolean more;
                try {
                    more = sequence.listener().onToken(sampled.token());
                } catch (RuntimeException e) {
                    LOG.error("listener of " + sequence.sequenceId() + " failed", e);
                    end(sequence, false, new GatewayException(GatewayException.Kind.INTERNAL,
                            "the gateway failed while handling a token: " + e), false);
                    return;
                }
                if (more) {
                    sequence.append(sampled.token().getTokenId());
                } else {
                    end(sequence, false, null, false);
                }
            }
            case SequenceOutcome.Failed failed -> failed(sequence, work, failed);
        }
    }

    private void failed(ScheduledSequence sequence, SequenceWork work, SequenceOutcome.Failed failed) {
        String where = "shard " + failed.shard() + ": " + failed.message();
        switch (failed.code()) {
            case SEQUENCE_ERROR_CODE_FAILED_PRECONDITION -> {
                if (sequence.retried() > MAX_KV_LOSSES) {
                    end(sequence, false, new GatewayException(GatewayException.Kind.UNAVAILABLE,
                            "the shards keep losing this sequence's KV cache (" + where + ")"), false);
                } else {
                    int resume = Math.max(0, Math.min(failed.heldPositions(), work.startPosition()));
                    LOG.debugf("%s lost KV of %s; prefilling again from position %d", failed.shard(),
                            sequence.sequenceId(), resume);
                    sequence.held(resume);
                }
            }
            case SEQUENCE_ERROR_CODE_RESOURCE_EXHAUSTED -> {
                String victim = evictor.evictOne();
                if (victim != null) {
                    releases.add(victim); // freed before the next step, which retries this sequence
                } else {
                    end(sequence, false, new GatewayException(GatewayException.Kind.RESOURCE_EXHAUSTED,
                            "the shards' KV cache is full; retry later (" + where + ")"), false);
                }
            }
            case SEQUENCE_ERROR_CODE_INVALID_ARGUMENT ->
                    end(sequence, false, GatewayException.invalid("the shard refused the request: " + where), false);
            default -> end(sequence, false, new GatewayException(GatewayException.Kind.INTERNAL,
                    "the shard failed this sequence (" + failed.code() + "): " + where), false);
        }
    }

    private void failBatch(List<ScheduledSequence> members, ShardException e) {
        GatewayException.Kind kind = e.unavailable() ? GatewayException.Kind.UNAVAILABLE : GatewayException.Kind.INTERNAL;
        String message = e.unavailable() ? "a shard is unavailable: " + e.getMessage()
                : "a shard failed the step: " + e.getMessage();
        LOG.warn(message);
        for (ScheduledSequence member : members) {
            end(member, false, new GatewayException(kind, message), false);
        }
    }

    /** Removes a sequence, releases or reports its KV, and tells its owner. */
    private void end(ScheduledSequence sequence, boolean cancelled, GatewayException failure, boolean release) {
        if (running.remove(sequence)) {
            reserved -= reservation(sequence);
        } else if (waiting.remove(sequence)) {
            waitingCount.decrementAndGet();
        } else {
            return;
        }
        runningCount = running.size();
        reservedCount = reserved;
        int[] heldIds;
        if (sequence.keepKv() && !release) {
            heldIds = sequence.ids(0, sequence.held());
        } else {
            releases.add(sequence.sequenceId());
            heldIds = new int[0];
        }
        endings.add(() -> {
            try {
                sequence.listener().onEnded(heldIds, cancelled, failure);
            } catch (RuntimeException e) {
                LOG.error("listener of " + sequence.sequenceId() + " failed at its end", e);
            }
        });
    }

    /** KV positions a running sequence may come to hold, in whole pages, at most the whole capacity. */
    private long reservation(ScheduledSequence sequence) {
        long page = options.kvPageTokens();
        long pages = (sequence.reservedTokens() + page - 1) / page;
        return Math.min(pages * page, options.kvCapacityTokens());
    }

    /** KV positions reserved by the running sequences now. */
    public long reservedKvTokens() {
        return reservedCount;
    }

    /** Frees the KV of ended sequences, then tells their owners, so that an ending seen means KV freed. */
    private void flushReleases() {
        try {
            if (!releases.isEmpty()) {
                List<String> ids = List.copyOf(releases);
                releases.clear();
                pipeline.release(ids);
            }
        } finally {
            List<Runnable> ended = List.copyOf(endings);
            endings.clear();
            ended.forEach(Runnable::run);
        }
    }

    private void shutDown() {
        closing = true;
        Command command;
        while ((command = commands.poll()) != null) {
            if (command instanceof Command.Submit submit) {
                waiting.add(submit.sequence());
            }
        }
        GatewayException stopping = new GatewayException(GatewayException.Kind.UNAVAILABLE,
                "the gateway is shutting down");
        for (ScheduledSequence sequence : List.copyOf(waiting)) {
            end(sequence, false, stopping, false);
        }
        for (ScheduledSequence sequence : List.copyOf(running)) {
            end(sequence, false, stopping, false);
        }
        try {
            flushReleases();
        } catch (RuntimeException e) {
            LOG.warn("could not release KV while shutting down", e);
        }
    }
}
