package qwen.gateway.shard;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import qwen.gateway.testing.FakeShard;
import qwen.proto.shard.v1.ReleaseResponse;
import qwen.proto.shard.v1.SamplingParams;
import qwen.proto.shard.v1.ShardInfo;
import qwen.proto.shard.v1.StepRequest;
import qwen.proto.shard.v1.StepResponse;

/**
 * Pipelined micro-batches: a step split into micro-batches gives exactly the outcomes of the
 * whole batch in one piece, and the shards compute at once (shard 1 on the first micro-batch
 * while shard 0 is on the second).
 */
@Timeout(30)
class PipelineMicroBatchTest {

    private static final SamplingParams GREEDY = SamplingParams.newBuilder().setGreedy(true).setTopP(1)
            .setRepetitionPenalty(1).build();

    /** A shard that answers on its own thread, one request at a time, after a delay, counting overlap. */
    private static final class Slow implements Shard {
        private final FakeShard fake;
        private final ExecutorService thread = Executors.newSingleThreadExecutor();
        private final AtomicInteger active;
        private final AtomicInteger mostActive;
        private final long millis;

        Slow(FakeShard fake, AtomicInteger active, AtomicInteger mostActive, long millis) {
            this.fake = fake;
            this.active = active;
            this.mostActive = mostActive;
            this.millis = millis;
        }

        @Override
        public String address() {
            return fake.address();
        }

        @Override
        public ShardInfo info() {
            return fake.info();
        }

        @Override
        public ReleaseResponse release(List<String> sequenceIds) {
            return fake.release(sequenceIds);
        }

        @Override
        public ReleaseResponse releasePrefix(String prefix) {
            return fake.releasePrefix(prefix);
        }

        @Override
        public CompletableFuture<StepResponse> step(StepRequest request) {
            return CompletableFuture.supplyAsync(() -> {
                mostActive.accumulateAndGet(active.incrementAndGet(), Math::max);
                try {
                    Thread.sleep(millis);
                    return fake.step(request).join();
                } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                } finally {
                    active.decrementAndGet();
                }
            }, thread);
        }

        @Override
        public void resetStream(String reason) {
        }

        @Override
        public void close() {
            thread.shutdownNow();
        }
    }

    private static List<FakeShard> twoShards() {
        return List.of(new FakeShard("a:1", FakeShard.info(0, 1, 2, true, false)),
                new FakeShard("b:1", FakeShard.info(1, 2, 2, false, true)));
    }

    /** Three steps of six sequences of mixed prompt lengths, some sampling, as the scheduler would send. */
    private static List<List<SequenceOutcome>> run(Pipeline pipeline) {
        int[] lengths = {1, 17, 3, 40, 2, 9};
        int[] held = new int[lengths.length];
        List<List<SequenceOutcome>> all = new ArrayList<>();
        for (int k = 0; k < 3; k++) {
            int step = k;
            List<SequenceWork> batch = new ArrayList<>();
            for (int s = 0; s < lengths.length; s++) {
                int n = step == 0 ? lengths[s] : 1;
                int[] ids = new int[n];
                Arrays.setAll(ids, i -> 100 + 13 * i + step);
                batch.add(new SequenceWork("seq" + s, held[s], ids, s != 3 || step > 0, GREEDY, 0));
                held[s] += n;
            }
            all.add(pipeline.step(batch));
        }
        return all;
    }

    @Test
    void microBatchesGiveTheOutcomesOfTheWholeBatch() {
        List<List<SequenceOutcome>> whole = run(Pipeline.open(twoShards(), Duration.ofSeconds(5), 1));
        for (int parts : new int[] {2, 3, 6, 10}) {
            List<FakeShard> shards = twoShards();
            assertEquals(whole, run(Pipeline.open(shards, Duration.ofSeconds(5), parts)), parts + " micro-batches");
            int expected = Math.min(parts, 6);
            assertEquals(3 * expected, shards.getFirst().requests().size(), "requests to the first shard");
        }
    }

    @Test
    void theShardsComputeAtOnce() {
        for (int parts : new int[] {1, 2}) {
            AtomicInteger active = new AtomicInteger();
            AtomicInteger mostActive = new AtomicInteger();
            List<Shard> shards = twoShards().stream()
                    .map(fake -> (Shard) new Slow(fake, active, mostActive, 40)).toList();
            try (Pipeline pipeline = Pipeline.open(shards, Duration.ofSeconds(5), parts)) {
                run(pipeline);
            }
            assertEquals(parts, mostActive.get(), "shards computing at once with " + parts + " micro-batch(es)");
        }
    }

    @Test
    void aShardDownFailsTheWholeStep() {
        List<FakeShard> shards = twoShards();
        Pipeline pipeline = Pipeline.open(shards, Duration.ofSeconds(5), 2);
        shards.getLast().down(true);
        ShardException e = assertThrows(ShardException.class, () -> run(pipeline));
        assertEquals("b:1", e.address());
    }

    @Test
    void splitKeepsOrderAndBalancesTokens() {
        List<SequenceWork> batch = new ArrayList<>();
        for (int n : new int[] {1, 1, 1, 1, 200, 1, 1}) {
            batch.add(new SequenceWork("s" + batch.size(), 0, new int[n], true, GREEDY, 0));
        }
        assertEquals(List.of(List.of(0, 1, 2, 3, 4), List.of(5, 6)), MicroBatches.split(batch, 2));
        assertEquals(List.of(List.of(0), List.of(1), List.of(2)), MicroBatches.split(batch.subList(0, 3), 3));
        assertEquals(1, MicroBatches.split(batch, 1).size());
        assertInstanceOf(List.class, MicroBatches.split(List.of(), 2).getFirst());
    }
}
