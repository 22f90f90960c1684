package qwen.gateway.shard;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import qwen.gateway.testing.FakeShard;
import qwen.proto.shard.v1.SamplingParams;
import qwen.proto.shard.v1.SequenceErrorCode;
import qwen.proto.shard.v1.SequenceStep;

/** A step through two in-memory shards: ids to both, hidden rows from the first to the second. */
class PipelineStepTest {

    private static final SamplingParams GREEDY = SamplingParams.newBuilder().setGreedy(true).setTopP(1)
            .setRepetitionPenalty(1).build();

    private final FakeShard first = new FakeShard("a:1", FakeShard.info(0, 1, 2, true, false));
    private final FakeShard last = new FakeShard("b:1", FakeShard.info(1, 2, 2, false, true));
    private final Pipeline pipeline = Pipeline.open(List.of(last, first), Duration.ofSeconds(5));

    @Test
    void stepRunsThroughTheShardsInLayerOrder() {
        List<SequenceOutcome> outcomes = pipeline.step(List.of(
                new SequenceWork("s1", 0, new int[] {1, 2, 3}, true, GREEDY, 0),
                new SequenceWork("s2", 0, new int[] {4, 5}, false, GREEDY, 0)));
        SequenceOutcome.Sampled sampled = assertInstanceOf(SequenceOutcome.Sampled.class, outcomes.get(0));
        assertEquals(FakeShard.HASH.next("s1", new int[] {1, 2, 3}), sampled.token().getTokenId());
        assertEquals(3, sampled.heldPositions());
        assertEquals(new SequenceOutcome.Stored("s2", 2), outcomes.get(1));

        // Micro-batches may reach a shard in either order: find s1's entry wherever it travelled.
        SequenceStep toFirst = entryOf(first, "s1");
        SequenceStep toLast = entryOf(last, "s1");
        assertEquals(List.of(1, 2, 3), toFirst.getTokenIdsList());
        assertFalse(toFirst.hasHidden());
        assertEquals(List.of(1, 2, 3), toLast.getTokenIdsList(), "every shard gets the ids");
        assertEquals(3 * 8 * 4, toLast.getHidden().getData().size());
        assertTrue(toLast.getSample());
    }

    private static SequenceStep entryOf(FakeShard shard, String sequenceId) {
        return shard.requests().stream().flatMap(r -> r.getSequencesList().stream())
                .filter(e -> e.getSequenceId().equals(sequenceId)).findFirst()
                .orElseThrow(() -> new AssertionError(sequenceId + " never reached the shard"));
    }

    @Test
    void aSequenceFailedOnTheFirstShardSkipsTheRest() {
        List<SequenceOutcome> outcomes = pipeline.step(List.of(
                new SequenceWork("lost", 5, new int[] {1}, true, GREEDY, 0),
                new SequenceWork("fine", 0, new int[] {7}, true, GREEDY, 0)));
        SequenceOutcome.Failed failed = assertInstanceOf(SequenceOutcome.Failed.class, outcomes.get(0));
        assertEquals(SequenceErrorCode.SEQUENCE_ERROR_CODE_FAILED_PRECONDITION, failed.code());
        assertEquals(0, failed.heldPositions());
        assertEquals("a:1", failed.shard());
        assertInstanceOf(SequenceOutcome.Sampled.class, outcomes.get(1));
        assertEquals(1, last.requests().getFirst().getSequencesCount());
    }

    @Test
    void aShardDownFailsTheStep() {
        last.down(true);
        ShardException e = assertThrows(ShardException.class,
                () -> pipeline.step(List.of(new SequenceWork("s", 0, new int[] {1}, true, GREEDY, 0))));
        assertEquals("b:1", e.address());
        assertTrue(e.unavailable());
    }

    @Test
    void releaseReachesEveryShard() {
        pipeline.step(List.of(new SequenceWork("s", 0, new int[] {1, 2}, true, GREEDY, 0)));
        assertEquals(1, first.sequencesHeld());
        assertEquals(1, last.sequencesHeld());
        pipeline.release(List.of("s"));
        assertEquals(0, first.sequencesHeld());
        assertEquals(0, last.sequencesHeld());
    }
}
