package qwen.gateway.chat;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.smallrye.mutiny.helpers.test.AssertSubscriber;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import qwen.gateway.chat.GenerationEvent.Finished;
import qwen.gateway.chat.GenerationEvent.Started;
import qwen.gateway.shard.Pipeline;
import qwen.gateway.shard.PipelineLayoutException;
import qwen.gateway.shard.ShardClient;
import qwen.gateway.testing.ShardProcess;
import qwen.gateway.tokenizer.QwenTokenizer;
import qwen.proto.shard.v1.ShardInfo;

/**
 * The engine over real shard processes (the TINY random-weight demo model): a split pipeline, chunked
 * prefill and KV reuse give exactly the ids of the plain path, and cancellation frees the KV.
 * Needs the built service jar: {@code ./mvnw -q -o -pl proto,service install -DskipTests}.
 */
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class RealShardsTest {

    private static final QwenTokenizer TOKENIZER = QwenTokenizer.bundled();
    private static final PromptBuilder PROMPTS = new PromptBuilder(new ChatTemplate(TOKENIZER),
            GenerationDefaults.bundled());
    private static final Duration WAIT = Duration.ofSeconds(60);

    private static final List<ShardProcess> processes = new ArrayList<>();
    private static ShardProcess whole;
    private static ShardProcess lower;
    private static ShardProcess upper;
    private final List<ChatEngine> engines = new ArrayList<>();

    @BeforeAll
    static void startShards() {
        whole = track(ShardProcess.start("0-1"));
        lower = track(ShardProcess.start("0-0"));
        upper = track(ShardProcess.start("1-1"));
    }

    private static ShardProcess track(ShardProcess process) {
        processes.add(process);
        return process;
    }

    @AfterAll
    static void stopShards() {
        processes.forEach(ShardProcess::close);
    }

    @org.junit.jupiter.api.AfterEach
    void closeEngines() {
        engines.forEach(ChatEngine::close);
        engines.clear();
    }

    private ChatEngine engine(int maxStepTokens, ShardProcess... shards) {
        return engine(maxStepTokens, java.util.HexFormat.of().toHexDigits(new java.util.Random().nextInt()), shards);
    }

    private ChatEngine engine(int maxStepTokens, String instanceId, ShardProcess... shards) {
        Pipeline pipeline = Pipeline.open(Arrays.stream(shards)
                .map(s -> ShardClient.create(s.address(), Duration.ofSeconds(10))).toList(), Duration.ofSeconds(60));
        ChatEngine engine = new ChatEngine(TOKENIZER, () -> pipeline, maxStepTokens, 16, instanceId);
        engines.add(engine);
        return engine;
    }

    private static GenerationSettings greedy(int maxNewTokens) {
        return new GenerationSettings(maxNewTokens, true, 1f, 0, 1f, 1.1f, 1L, List.of(), true, 3);
    }

    private static int[] chat(String query) {
        return PROMPTS.build(new Conversation(ChatTemplate.DEFAULT_SYSTEM_PROMPT, List.of(), query));
    }

    private static List<GenerationEvent> run(ChatEngine engine, String requestId, String sequenceId, boolean keep,
                                             int[] prompt, int maxNewTokens) {
        return engine.generate(new GenerationRequest(requestId, null, sequenceId, keep, prompt, greedy(maxNewTokens)))
                .collect().asList().await().atMost(WAIT);
    }

    private static Finished finished(List<GenerationEvent> events) {
        return assertInstanceOf(Finished.class, events.getLast());
    }

    @Test
    void twoShardPipelineGivesTheIdsOfOneShard() {
        ChatEngine one = engine(512, whole);
        ChatEngine two = engine(512, upper, lower);
        List<String> queries = List.of("Hello! Who are you?", "你好", "Write a haiku about the sea.");
        for (int i = 0; i < queries.size(); i++) {
            int[] prompt = chat(queries.get(i));
            Finished expected = finished(run(one, "one-" + i, "one-" + i, false, prompt, 16));
            Finished split = finished(run(two, "two-" + i, "two-" + i, false, prompt, 16));
            assertTrue(expected.completionIds().length > 0);
            assertArrayEquals(expected.completionIds(), split.completionIds(), "query " + queries.get(i));
            assertEquals(expected.text(), split.text());
        }
    }

    @Test
    void concurrentMixedPromptsGiveTheIdsOfEachAloneOnOneAndTwoShards() {
        List<int[]> prompts = new ArrayList<>();
        for (String query : List.of("Hi", "Write a long poem about the sea, the wind and the stars, in ten verses.",
                "你好", "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20", "Why?")) {
            prompts.add(chat(query));
        }
        prompts.add(IntStream.range(0, 90).map(i -> 1000 + 37 * i).toArray()); // no ChatML at all
        ChatEngine alone = engine(512, whole);
        List<int[]> expected = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) {
            expected.add(finished(run(alone, "alone-" + i, "alone-" + i, false, prompts.get(i), 12)).completionIds());
        }
        // All at once, in one batch (decode tokens and prefill chunks together): through one shard, and
        // through two in micro-batches, with chunks small enough that prompts straddle steps.
        for (ChatEngine batched : List.of(engine(48, whole), engine(512, lower, upper))) {
            List<java.util.concurrent.CompletableFuture<List<GenerationEvent>>> all = new ArrayList<>();
            for (int i = 0; i < prompts.size(); i++) { // subscribed now, all running at once
                all.add(batched.generate(new GenerationRequest("together-" + i, null, "together-" + i, false,
                        prompts.get(i), greedy(12))).collect().asList().subscribe().asCompletionStage());
            }
            List<List<GenerationEvent>> results = new ArrayList<>();
            for (var future : all) {
                results.add(future.orTimeout(WAIT.toSeconds(), TimeUnit.SECONDS).join());
            }
            for (int i = 0; i < prompts.size(); i++) {
                assertArrayEquals(expected.get(i), finished(results.get(i)).completionIds(), "prompt " + i);
            }
        }
    }

    @Test
    void chunkedPrefillGivesTheIdsOfOneChunk() {
        int[] prompt = IntStream.range(0, 40).map(i -> 1000 + 37 * i).toArray();
        Finished oneChunk = finished(run(engine(512, whole), "a", "chunk-a", false, prompt, 12));
        Finished chunked = finished(run(engine(8, whole), "b", "chunk-b", false, prompt, 12));
        assertArrayEquals(oneChunk.completionIds(), chunked.completionIds());
        Finished splitChunked = finished(run(engine(8, lower, upper), "c", "chunk-c", false, prompt, 12));
        assertArrayEquals(oneChunk.completionIds(), splitChunked.completionIds());
    }

    @Test
    void extendedPromptReusesTheHeldPrefix() throws Exception {
        ChatEngine engine = engine(512, whole);
        int[] first = chat("Tell me a story.");
        Finished turn1 = finished(run(engine, "t1", "session-1", true, first, 8));
        int generated = turn1.completionIds().length;
        int[] held = Arrays.copyOf(first, first.length + generated - 1);
        System.arraycopy(turn1.completionIds(), 0, held, first.length, generated - 1);
        int[] extra = TOKENIZER.encodeOrdinary(" And then?");
        int[] second = Arrays.copyOf(held, held.length + extra.length);
        System.arraycopy(extra, 0, second, held.length, extra.length);

        List<GenerationEvent> turn2 = run(engine, "t2", "session-1", true, second, 8);
        assertEquals(held.length, assertInstanceOf(Started.class, turn2.getFirst()).cachedPromptTokens());
        assertEquals(held.length, finished(turn2).usage().cachedPromptTokens());
        Finished fresh = finished(run(engine, "t3", "fresh-1", false, second, 8));
        assertArrayEquals(fresh.completionIds(), finished(turn2).completionIds());

        engine.release("session-1");
        awaitKvFreed(whole);
    }

    @Test
    void cancellingMidStreamReleasesTheKv() throws Exception {
        awaitKvFreed(whole);
        ChatEngine engine = engine(512, whole);
        AssertSubscriber<GenerationEvent> subscriber = engine.generate(new GenerationRequest("c1", null, "cancel-1",
                false, chat("Count to a thousand."), greedy(100_000))).subscribe()
                .withSubscriber(AssertSubscriber.create(Long.MAX_VALUE));
        subscriber.awaitItems(5, WAIT);
        ShardInfo during = whole.info();
        assertEquals(1, during.getSequencesHeld());
        assertTrue(during.getKvBytesInUse() > 0);
        subscriber.cancel();
        awaitKvFreed(whole);

        AssertSubscriber<GenerationEvent> byId = engine.generate(new GenerationRequest("c2", null, "cancel-2",
                false, chat("Count to a thousand."), greedy(100_000))).subscribe()
                .withSubscriber(AssertSubscriber.create(Long.MAX_VALUE));
        byId.awaitItems(5, WAIT);
        assertTrue(engine.cancel("c2"));
        byId.awaitCompletion(WAIT);
        assertEquals(GenerationEvent.FinishReason.CANCELLED, finished(byId.getItems()).reason());
        awaitKvFreed(whole);
    }

    @Test
    void aRestartedGatewayFreesTheKvItsEarlierRunLeftAndNoOtherGatewaysKv(@org.junit.jupiter.api.io.TempDir
                                                                          java.nio.file.Path dir) throws Exception {
        awaitKvFreed(whole);
        String id = EngineProducers.instanceId(dir.resolve(EngineProducers.INSTANCE_ID_FILE));
        assertEquals(id, EngineProducers.instanceId(dir.resolve(EngineProducers.INSTANCE_ID_FILE)), "kept in its file");
        ChatEngine earlier = engine(512, id, whole);
        ChatEngine other = engine(512, "0123abcd".equals(id) ? "0123abce" : "0123abcd", whole);
        finished(run(earlier, "kept", "session-a", true, chat("Hello"), 4));
        finished(run(other, "other", "session-b", true, chat("Hello"), 4));
        earlier.close(); // as a crash: the session's KV stays on the shard
        assertEquals(2, whole.info().getSequencesHeld());

        ChatEngine restarted = engine(512, id, whole);
        finished(run(restarted, "fresh", "stateless", false, chat("Hi"), 4));
        assertEquals(1, whole.info().getSequencesHeld(), "the earlier run's session is freed, the other gateway's kept");
        other.release("session-b");
        awaitKvFreed(whole);
    }

    @Test
    void aPipelineMissingALayerIsRefused() {
        PipelineLayoutException e = assertThrows(PipelineLayoutException.class, () -> Pipeline.open(
                List.of(ShardClient.create(lower.address(), Duration.ofSeconds(10))), Duration.ofSeconds(10)));
        assertTrue(e.getMessage().contains("layer 1 is served by no shard"), e.getMessage());
        assertTrue(e.getMessage().contains("no shard holds the head"), e.getMessage());
    }

    private static void awaitKvFreed(ShardProcess shard) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        ShardInfo info = shard.info();
        while (info.getSequencesHeld() != 0 || info.getKvBytesInUse() != 0) {
            assertTrue(System.nanoTime() < deadline, "KV still held: " + info.getSequencesHeld() + " sequences, "
                    + info.getKvBytesInUse() + " bytes");
            Thread.sleep(20);
            info = shard.info();
        }
    }
}
