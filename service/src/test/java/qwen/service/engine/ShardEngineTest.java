package qwen.service.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import qwen.service.kv.KvPool;
import qwen.service.model.DType;
import qwen.service.model.RandomCheckpoint;
import qwen.service.sampling.SamplingParams;

/** The shard engine's per-sequence state: KV held between steps, failures that change nothing, batching. */
class ShardEngineTest {

    private static final SamplingParams GREEDY = SamplingParams.greedy(0);

    @TempDir
    static Path tmp;
    static Path model;

    @BeforeAll
    static void writeModel() {
        model = new RandomCheckpoint(64, 2, 4, 96, 512, 256, DType.BF16, 1, 5, null).writeTo(tmp.resolve("m"));
    }

    private static ShardEngine engine(long kvBytes) {
        return ShardEngine.open(new EngineOptions(model, null, EngineOptions.KernelSet.VECTOR, 2, kvBytes));
    }

    @Test
    void aStepBeyondTheHeldPositionsIsRefusedWithThePositionsHeld() {
        try (ShardEngine e = engine(16L << 20)) {
            e.step(List.of(new StepInput("a", 0, new int[] {1, 2, 3}, null, 0, true, GREEDY)));
            StepOutput out = e.step(List.of(new StepInput("a", 5, new int[] {4}, null, 0, true, GREEDY))).getFirst();
            assertEquals(StepOutput.Code.FAILED_PRECONDITION, out.failure().code());
            assertEquals(3, out.failure().heldPositions());
            assertEquals(3, e.heldPositions("a"), "a refused step changes nothing");
            StepOutput unknown = e.step(List.of(new StepInput("b", 2, new int[] {4}, null, 0, true, GREEDY))).getFirst();
            assertEquals(StepOutput.Code.FAILED_PRECONDITION, unknown.failure().code());
            assertEquals(0, unknown.failure().heldPositions());
            assertEquals(1, e.liveSequences());
        }
    }

    @Test
    void idsOutsideTheVocabularyAreInvalidAndChangeNothing() {
        try (ShardEngine e = engine(16L << 20)) {
            StepOutput out = e.step(List.of(new StepInput("a", 0, new int[] {1, 512}, null, 0, true, GREEDY))).getFirst();
            assertEquals(StepOutput.Code.INVALID_ARGUMENT, out.failure().code());
            assertTrue(out.failure().message().contains("512"), out.failure().message());
            assertEquals(0, e.liveSequences());
            assertEquals(0, e.kvPool().bytesInUse());
        }
    }

    @Test
    void aFullKvBudgetRefusesOnlyTheSequencesThatDoNotFit() {
        // Pages hold 64 positions; 2 blocks x K,V = 4 pages per 64 positions; budget = 6 pages.
        long pageBytes = (long) KvPool.PAGE_TOKENS * 64 * Float.BYTES;
        try (ShardEngine e = engine(6 * pageBytes)) {
            List<StepOutput> out = e.step(List.of(
                    new StepInput("a", 0, new int[] {1, 2}, null, 0, true, GREEDY),
                    new StepInput("b", 0, new int[] {3, 4}, null, 0, true, GREEDY)));
            assertNotNull(out.get(0).sample());
            assertEquals(StepOutput.Code.RESOURCE_EXHAUSTED, out.get(1).failure().code());
            assertEquals(4 * pageBytes, e.kvPool().bytesInUse(), "only a's pages are taken");
            assertEquals(1, e.release(List.of("a", "never-seen")));
            assertEquals(0, e.kvPool().bytesInUse());
        }
    }

    @Test
    void restartingASequenceFromAnEarlierPositionRecomputesFromThere() {
        try (ShardEngine e = engine(16L << 20)) {
            int first = e.step(List.of(new StepInput("a", 0, new int[] {7, 8, 9}, null, 0, true, GREEDY))).getFirst().sample().id();
            e.step(List.of(new StepInput("a", 3, new int[] {first}, null, 0, true, GREEDY)));
            assertEquals(4, e.heldPositions("a"));
            int again = e.step(List.of(new StepInput("a", 0, new int[] {7, 8, 9}, null, 0, true, GREEDY))).getFirst().sample().id();
            assertEquals(first, again);
            assertEquals(3, e.heldPositions("a"));
        }
    }

    @Test
    void aSequenceNamedTwiceInAStepIsRefusedTheSecondTimeOnly() {
        try (ShardEngine e = engine(16L << 20)) {
            List<StepOutput> out = e.step(List.of(
                    new StepInput("a", 0, new int[] {1, 2}, null, 0, true, GREEDY),
                    new StepInput("a", 0, new int[] {3, 4, 5}, null, 0, true, GREEDY)));
            assertNotNull(out.get(0).sample());
            assertEquals(StepOutput.Code.INVALID_ARGUMENT, out.get(1).failure().code());
            assertTrue(out.get(1).failure().message().contains("appears twice"), out.get(1).failure().message());
            assertEquals(2, e.heldPositions("a"), "the refused entry changes nothing");
        }
    }

    @Test
    void batchedSequencesGiveTheSameTokensAsEachAlone() {
        batchedEqualsAlone(GREEDY);
    }

    /** Each sequence draws from its own seeded generator, though a batch samples its rows in parallel. */
    @Test
    void seededSamplingInABatchDrawsAsEachSequenceAlone() {
        batchedEqualsAlone(new SamplingParams(false, 1.5f, 50, 0.95f, 1.1f, 1234, 3));
    }

    private static void batchedEqualsAlone(SamplingParams sampling) {
        SplittableRandom r = new SplittableRandom(8);
        int[][] prompts = {r.ints(3, 0, 512).toArray(), r.ints(11, 0, 512).toArray(), r.ints(1, 0, 512).toArray(),
                r.ints(5, 0, 512).toArray(), r.ints(2, 0, 512).toArray()};
        int steps = 6;
        int[][] alone = new int[prompts.length][];
        try (ShardEngine e = engine(16L << 20)) {
            for (int s = 0; s < prompts.length; s++) {
                alone[s] = Generator.generate(e, prompts[s], steps, sampling, Set.of(), id -> { }).ids();
            }
            int[][] together = new int[prompts.length][steps];
            int[][] next = prompts.clone();
            int[] pos = new int[prompts.length];
            for (int step = 0; step < steps; step++) {
                List<StepInput> batch = new ArrayList<>();
                for (int s = 0; s < prompts.length; s++) {
                    batch.add(new StepInput("seq" + s, pos[s], next[s], null, 0, true, sampling));
                }
                List<StepOutput> out = e.step(batch);
                for (int s = 0; s < prompts.length; s++) {
                    assertNull(out.get(s).failure());
                    pos[s] += next[s].length;
                    together[s][step] = out.get(s).sample().id();
                    next[s] = new int[] {together[s][step]};
                }
            }
            for (int s = 0; s < prompts.length; s++) {
                assertArrayEquals(alone[s], together[s], "sequence " + s);
            }
        }
    }
}
