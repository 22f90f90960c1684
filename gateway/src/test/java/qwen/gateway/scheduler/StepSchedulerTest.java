package qwen.gateway.scheduler;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import qwen.gateway.testing.Await;
import qwen.gateway.chat.GatewayException;
import qwen.gateway.shard.Pipeline;
import qwen.gateway.testing.FakeShard;
import qwen.proto.shard.v1.SampledToken;
import qwen.proto.shard.v1.SamplingParams;
import qwen.proto.shard.v1.SequenceStep;
import qwen.proto.shard.v1.StepRequest;

/** Continuous batching over an in-memory shard whose tokens depend on every id it holds. */
@Timeout(30)
class StepSchedulerTest {

    private static final SamplingParams GREEDY = SamplingParams.newBuilder().setGreedy(true).setTopP(1)
            .setRepetitionPenalty(1).build();

    private final List<StepScheduler> schedulers = new ArrayList<>();

    /** Collects a sequence's tokens; stops after {@code limit} tokens or when {@code stopAt} says so. */
    static final class Collector implements SequenceListener {
        final List<Integer> tokens = new ArrayList<>();
        final CompletableFuture<Collector> ended = new CompletableFuture<>();
        final int limit;
        volatile Runnable onEachToken = () -> { };
        volatile boolean scheduled;
        int[] heldIds;
        boolean cancelled;
        GatewayException failure;

        Collector(int limit) {
            this.limit = limit;
        }

        @Override
        public void onScheduled() {
            scheduled = true;
        }

        @Override
        public synchronized boolean onToken(SampledToken token) {
            tokens.add(token.getTokenId());
            onEachToken.run();
            return tokens.size() < limit;
        }

        @Override
        public synchronized void onEnded(int[] heldIds, boolean cancelled, GatewayException failure) {
            this.heldIds = heldIds;
            this.cancelled = cancelled;
            this.failure = failure;
            ended.complete(this);
        }

        Collector await() throws Exception {
            return ended.get(20, TimeUnit.SECONDS);
        }

        synchronized int count() {
            return tokens.size();
        }
    }

    private StepScheduler scheduler(FakeShard shard, int maxStepTokens, int maxQueued, KvEvictor evictor) {
        Pipeline pipeline = Pipeline.open(List.of(shard), Duration.ofSeconds(10));
        StepScheduler scheduler = new StepScheduler(pipeline,
                new StepScheduler.Options(maxStepTokens, maxQueued, pipeline.kvCapacityTokens()), evictor);
        schedulers.add(scheduler);
        return scheduler;
    }

    @AfterEach
    void close() {
        schedulers.forEach(StepScheduler::close);
    }

    private static int[] prompt(int length) {
        int[] ids = new int[length];
        for (int i = 0; i < length; i++) {
            ids[i] = 100 + 7 * i;
        }
        return ids;
    }

    private static List<Integer> run(FakeShard shard, StepScheduler scheduler, String id, int[] prompt, int tokens)
            throws Exception {
        Collector c = new Collector(tokens);
        scheduler.submit(new ScheduledSequence(id, prompt, 0, false, GREEDY, prompt.length + tokens, c));
        c.await();
        assertNull(c.failure);
        return c.tokens;
    }

    @Test
    void chunkedPrefillGivesTheSameTokensAsOneChunk() throws Exception {
        FakeShard whole = FakeShard.whole(8192, 0);
        List<Integer> oneChunk = run(whole, scheduler(whole, 512, 8, KvEvictor.NONE), "s", prompt(40), 6);

        FakeShard chunked = FakeShard.whole(8192, 0);
        List<Integer> inChunks = run(chunked, scheduler(chunked, 8, 8, KvEvictor.NONE), "s", prompt(40), 6);
        assertEquals(oneChunk, inChunks);

        List<StepRequest> steps = chunked.requests();
        for (int i = 0; i < 5; i++) { // 40 prompt tokens in chunks of 8, sampling only on the last
            SequenceStep entry = steps.get(i).getSequences(0);
            assertEquals(8 * i, entry.getStartPosition());
            assertEquals(8, entry.getTokenIdsCount());
            assertEquals(i == 4, entry.getSample(), "sample on chunk " + i);
        }
        assertEquals(5 + 5, steps.size(), "5 prefill steps, then one decode step per further token");
        assertEquals(1, whole.requests().getFirst().getSequencesCount());
        assertEquals(40, whole.requests().getFirst().getSequences(0).getTokenIdsCount());
    }

    @Test
    void decodeTokensShareTheStepWithPrefillChunks() throws Exception {
        FakeShard shard = FakeShard.whole(8192, 0);
        StepScheduler scheduler = scheduler(shard, 8, 8, KvEvictor.NONE);
        CountDownLatch gate = new CountDownLatch(1);
        shard.gate(gate);
        Collector first = new Collector(20);
        Collector second = new Collector(3);
        scheduler.submit(new ScheduledSequence("a", prompt(3), 0, false, GREEDY, 100, first));
        scheduler.submit(new ScheduledSequence("b", prompt(30), 0, false, GREEDY, 100, second));
        gate.countDown();
        first.await();
        second.await();
        for (StepRequest step : shard.requests()) {
            assertTrue(step.getSequencesList().stream().mapToInt(SequenceStep::getTokenIdsCount).sum() <= 8);
        }
        boolean shared = shard.requests().stream().anyMatch(step -> step.getSequencesCount() == 2
                && step.getSequences(0).getTokenIdsCount() == 1 && step.getSequences(1).getTokenIdsCount() == 7);
        assertTrue(shared, "a decode token and a 7-token chunk in one step");
        FakeShard alone = FakeShard.whole(8192, 0);
        assertEquals(run(alone, scheduler(alone, 512, 8, KvEvictor.NONE), "b", prompt(30), 3), second.tokens);
    }

    @Test
    void requestsBeyondTheQueueAreRefusedAtOnce() throws Exception {
        FakeShard shard = FakeShard.whole(8192, 0);
        StepScheduler scheduler = scheduler(shard, 512, 1, KvEvictor.NONE);
        CountDownLatch gate = new CountDownLatch(1);
        shard.gate(gate);
        Collector running = new Collector(2);
        scheduler.submit(new ScheduledSequence("a", prompt(4), 0, false, GREEDY, 10, running));
        awaitTrue(() -> scheduler.runningSequences() == 1);
        // The step of "a" is held at the gate; "b" waits; "c" finds the queue full.
        Collector waiting = new Collector(2);
        scheduler.submit(new ScheduledSequence("b", prompt(4), 0, false, GREEDY, 10, waiting));
        GatewayException full = assertThrows(GatewayException.class, () -> scheduler.submit(
                new ScheduledSequence("c", prompt(4), 0, false, GREEDY, 10, new Collector(2))));
        assertEquals(GatewayException.Kind.RESOURCE_EXHAUSTED, full.kind());
        gate.countDown();
        assertNull(running.await().failure);
        assertNull(waiting.await().failure);
    }

    @Test
    void cancelledSequenceIsDroppedAndReleased() throws Exception {
        FakeShard shard = FakeShard.whole(8192, 0);
        shard.stepDelay(5);
        StepScheduler scheduler = scheduler(shard, 512, 8, KvEvictor.NONE);
        Collector c = new Collector(1000);
        ScheduledSequence sequence = new ScheduledSequence("s", prompt(10), 0, false, GREEDY, 2000, c);
        c.onEachToken = () -> {
            if (c.tokens.size() == 3) {
                sequence.cancel();
            }
        };
        scheduler.submit(sequence);
        c.await();
        assertTrue(c.cancelled);
        assertEquals(3, c.count(), "cancellation is seen before the next step");
        assertEquals(0, c.heldIds.length);
        awaitTrue(() -> shard.sequencesHeld() == 0);
    }

    @Test
    void cancelledKeptSequenceReportsExactlyTheIdsTheShardHolds() throws Exception {
        FakeShard shard = FakeShard.whole(8192, 0);
        StepScheduler scheduler = scheduler(shard, 512, 8, KvEvictor.NONE);
        Collector c = new Collector(1000);
        ScheduledSequence sequence = new ScheduledSequence("s", prompt(10), 0, true, GREEDY, 2000, c);
        c.onEachToken = () -> {
            if (c.tokens.size() == 4) {
                sequence.cancel();
            }
        };
        scheduler.submit(sequence);
        c.await();
        assertTrue(c.cancelled);
        assertArrayEquals(shard.heldIds("s"), c.heldIds);
        assertEquals(10 + 3, c.heldIds.length, "the prompt and the tokens fed back; the last is not in the KV yet");
    }

    @Test
    void lostKvIsPrefilledAgainUnseen() throws Exception {
        FakeShard steady = FakeShard.whole(8192, 0);
        List<Integer> expected = run(steady, scheduler(steady, 512, 8, KvEvictor.NONE), "s", prompt(12), 10);

        FakeShard restarting = FakeShard.whole(8192, 0);
        StepScheduler scheduler = scheduler(restarting, 512, 8, KvEvictor.NONE);
        Collector c = new Collector(10);
        c.onEachToken = () -> {
            if (c.tokens.size() == 4) {
                restarting.dropKv();
            }
        };
        scheduler.submit(new ScheduledSequence("s", prompt(12), 0, false, GREEDY, 100, c));
        c.await();
        assertNull(c.failure);
        assertEquals(expected, c.tokens);
        assertTrue(restarting.requests().stream().anyMatch(step -> step.getSequences(0).getStartPosition() == 0
                && step.getSequences(0).getTokenIdsCount() == 12 + 4), "re-prefilled from position 0");
    }

    @Test
    void aShardDownFailsTheStepsSequencesWithUnavailable() throws Exception {
        FakeShard shard = FakeShard.whole(8192, 0);
        StepScheduler scheduler = scheduler(shard, 512, 8, KvEvictor.NONE);
        Collector c = new Collector(100);
        c.onEachToken = () -> {
            if (c.tokens.size() == 2) {
                shard.down(true);
            }
        };
        scheduler.submit(new ScheduledSequence("s", prompt(5), 0, false, GREEDY, 200, c));
        c.await();
        assertEquals(GatewayException.Kind.UNAVAILABLE, c.failure.kind());
        assertTrue(c.failure.getMessage().contains("fake:1"), c.failure.getMessage());
        shard.down(false);
        assertEquals(3, run(shard, scheduler, "t", prompt(5), 3).size(), "the scheduler goes on afterwards");
    }

    @Test
    void fullKvEvictsAnIdleSequenceAndRetries() throws Exception {
        FakeShard shard = FakeShard.whole(8192, 30);
        List<String> idle = new ArrayList<>(List.of("idle"));
        StepScheduler scheduler = scheduler(shard, 512, 8, () -> idle.isEmpty() ? null : idle.removeFirst());
        Collector kept = new Collector(1);
        scheduler.submit(new ScheduledSequence("idle", prompt(20), 0, true, GREEDY, 21, kept));
        kept.await();
        assertEquals(20, shard.heldPositions("idle"));
        List<Integer> tokens = run(shard, scheduler, "new", prompt(15), 2);
        assertEquals(2, tokens.size());
        assertEquals(0, shard.heldPositions("idle"), "the idle sequence was evicted");

        Collector refused = new Collector(1);
        scheduler.submit(new ScheduledSequence("huge", prompt(31), 0, false, GREEDY, 32, refused));
        assertEquals(GatewayException.Kind.RESOURCE_EXHAUSTED, refused.await().failure.kind());
    }

    @Test
    void releaseFreesAKeptSequence() throws Exception {
        FakeShard shard = FakeShard.whole(8192, 0);
        StepScheduler scheduler = scheduler(shard, 512, 8, KvEvictor.NONE);
        Collector c = new Collector(2);
        scheduler.submit(new ScheduledSequence("session", prompt(6), 0, true, GREEDY, 10, c));
        c.await();
        assertEquals(7, shard.heldPositions("session"));
        scheduler.release("session");
        awaitTrue(() -> shard.sequencesHeld() == 0);
        assertFalse(c.cancelled);
    }

    private static void awaitTrue(java.util.function.BooleanSupplier condition) {
        Await.until(condition, java.time.Duration.ofSeconds(10), "the condition");
    }
}
