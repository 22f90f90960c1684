package qwen.gateway.chat;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
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
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import qwen.gateway.chat.GenerationEvent.Delta;
import qwen.gateway.chat.GenerationEvent.FinishReason;
import qwen.gateway.chat.GenerationEvent.Finished;
import qwen.gateway.chat.GenerationEvent.Started;
import qwen.gateway.shard.Pipeline;
import qwen.gateway.testing.FakeShard;
import qwen.gateway.tokenizer.QwenTokenizer;

/** The engine's stop rules, events, KV reuse and cancellation over an in-memory shard. */
@Timeout(30)
class ChatEngineTest {

    private static final QwenTokenizer TOKENIZER = QwenTokenizer.bundled();
    private static final Duration WAIT = Duration.ofSeconds(20);

    private final List<ChatEngine> engines = new ArrayList<>();

    @AfterEach
    void close() {
        engines.forEach(ChatEngine::close);
    }

    private ChatEngine engine(FakeShard shard, int maxQueued) {
        Pipeline pipeline = Pipeline.open(List.of(shard), Duration.ofSeconds(10));
        ChatEngine engine = new ChatEngine(TOKENIZER, () -> pipeline, 512, maxQueued);
        engines.add(engine);
        return engine;
    }

    /** A model that answers with {@code script} after a prompt of {@code promptLength} ids, then "x" forever. */
    private static FakeShard.Model script(int promptLength, int... script) {
        int filler = TOKENIZER.encodeOrdinary("x")[0];
        return (sequence, ids) -> ids.length - promptLength < script.length ? script[ids.length - promptLength] : filler;
    }

    private static int[] text(String... pieces) {
        return Arrays.stream(pieces).flatMapToInt(p -> Arrays.stream(TOKENIZER.encodeOrdinary(p))).toArray();
    }

    private static int[] concat(int[] a, int... b) {
        int[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    private static final int[] PROMPT = IntStream.range(0, 12).map(i -> 1000 + i).toArray();

    private static GenerationSettings settings(int maxNewTokens, List<String> stop, boolean logprobs, int top) {
        return new GenerationSettings(maxNewTokens, true, 1f, 0, 1f, 1f, 7L, stop, logprobs, top);
    }

    private static GenerationRequest request(String id, String sequence, boolean keep, int[] prompt,
                                             GenerationSettings settings) {
        return new GenerationRequest(id, null, sequence, keep, prompt, settings);
    }

    private static List<GenerationEvent> events(ChatEngine engine, GenerationRequest request) {
        return engine.generate(request).collect().asList().await().atMost(WAIT);
    }

    private static Finished finished(List<GenerationEvent> events) {
        return assertInstanceOf(Finished.class, events.getLast());
    }

    private static String deltaText(List<GenerationEvent> events) {
        StringBuilder text = new StringBuilder();
        events.stream().filter(e -> e instanceof Delta).forEach(e -> text.append(((Delta) e).text()));
        return text.toString();
    }

    @Test
    void stopTokenEndsTheReplyAndIsNotText() {
        FakeShard shard = FakeShard.whole(8192, 0);
        int[] reply = text("Hello", " world");
        shard.model(script(PROMPT.length, concat(reply, QwenTokenizer.IM_END_ID)));
        List<GenerationEvent> events = events(engine(shard, 8), request("r1", "s1", false, PROMPT,
                settings(100, List.of(), false, 0)));

        Started started = assertInstanceOf(Started.class, events.getFirst());
        assertEquals(new Started("r1", null, PROMPT.length, 0, 7L), started);
        Finished finished = finished(events);
        assertEquals(FinishReason.STOP, finished.reason());
        assertEquals("", finished.matchedStop());
        assertEquals("Hello world", finished.text());
        assertEquals("Hello world", deltaText(events));
        assertArrayEquals(concat(reply, QwenTokenizer.IM_END_ID), finished.completionIds());
        assertEquals(new GenerationEvent.Usage(PROMPT.length, reply.length + 1, 0), finished.usage());
        assertTrue(finished.totalNanos() >= finished.timeToFirstTokenNanos());
        assertTrue(finished.timeToFirstTokenNanos() >= finished.queueNanos());
        assertEquals(0, shard.sequencesHeld(), "a stateless request's KV is released");
    }

    @Test
    void stopStringCutsTheReplyAndIsNeverShown() {
        FakeShard shard = FakeShard.whole(8192, 0);
        shard.model(script(PROMPT.length, text("Hello", " world", " E", "ND", " more")));
        List<GenerationEvent> events = events(engine(shard, 8), request("r", "s", false, PROMPT,
                settings(100, List.of(" END"), false, 0)));
        Finished finished = finished(events);
        assertEquals(FinishReason.STOP, finished.reason());
        assertEquals(" END", finished.matchedStop());
        assertEquals("Hello world", finished.text());
        assertEquals("Hello world", deltaText(events));
        assertFalse(events.stream().anyMatch(e -> e instanceof Delta d && d.text().contains("E")));
    }

    @Test
    void heldBackTextIsReleasedWhenItDoesNotBecomeAStopString() {
        FakeShard shard = FakeShard.whole(8192, 0);
        int[] reply = text("Hello", " wor", "ms");
        shard.model(script(PROMPT.length, reply));
        List<GenerationEvent> events = events(engine(shard, 8), request("r", "s", false, PROMPT,
                settings(reply.length, List.of(" world"), false, 0)));
        List<String> deltas = events.stream().filter(e -> e instanceof Delta).map(e -> ((Delta) e).text()).toList();
        assertEquals("Hello", deltas.getFirst());
        assertEquals("", deltas.get(1), "\" wor\" could start \" world\" and waits");
        assertEquals(" worms", deltas.get(2));
        Finished finished = finished(events);
        assertEquals(FinishReason.LENGTH, finished.reason());
        assertEquals("Hello worms", finished.text());
    }

    @Test
    void maxNewTokensEndsWithLength() {
        FakeShard shard = FakeShard.whole(8192, 0);
        List<GenerationEvent> events = events(engine(shard, 8), request("r", "s", false, PROMPT,
                settings(5, List.of(), true, 2)));
        Finished finished = finished(events);
        assertEquals(FinishReason.LENGTH, finished.reason());
        assertEquals(5, finished.completionIds().length);
        List<Delta> deltas = events.stream().filter(e -> e instanceof Delta).map(e -> (Delta) e).toList();
        assertEquals(5, deltas.size());
        for (int i = 0; i < 5; i++) {
            assertEquals(finished.completionIds()[i], deltas.get(i).tokenIds()[0]);
            GenerationEvent.TokenLogprobs logprobs = deltas.get(i).logprobs().getFirst();
            assertEquals(finished.completionIds()[i], logprobs.tokenId());
            assertEquals(2, logprobs.top().size());
        }
    }

    @Test
    void reachingSeqLengthEndsWithLength() {
        FakeShard shard = FakeShard.whole(16, 0);
        Finished finished = finished(events(engine(shard, 8), request("r", "s", false, PROMPT,
                settings(100, List.of(), false, 0))));
        assertEquals(FinishReason.LENGTH, finished.reason());
        assertEquals(16 - PROMPT.length, finished.completionIds().length);
    }

    @Test
    void nextTurnReusesTheHeldPrefix() {
        FakeShard shard = FakeShard.whole(8192, 0);
        ChatEngine engine = engine(shard, 8);
        Finished first = finished(events(engine, request("t1", "session", true, PROMPT,
                settings(6, List.of(), false, 0))));
        int[] held = shard.heldIds(engine.shardSequenceId("session"));
        assertArrayEquals(concat(PROMPT, Arrays.copyOf(first.completionIds(), 5)), held);

        int[] next = concat(concat(PROMPT, Arrays.copyOf(first.completionIds(), 3)), 77, 78, 79);
        List<GenerationEvent> second = events(engine, request("t2", "session", true, next,
                settings(6, List.of(), false, 0)));
        assertEquals(PROMPT.length + 3, assertInstanceOf(Started.class, second.getFirst()).cachedPromptTokens());
        assertEquals(PROMPT.length + 3, finished(second).usage().cachedPromptTokens());
        assertEquals(PROMPT.length + 3, shard.requests().get(first.completionIds().length).getSequences(0)
                .getStartPosition(), "only the new ids are prefilled");

        Finished fresh = finished(events(engine, request("t3", "other", false, next, settings(6, List.of(), false, 0))));
        assertArrayEquals(fresh.completionIds(), finished(second).completionIds());
    }

    @Test
    void samePromptAgainStillComputesItsLastToken() {
        FakeShard shard = FakeShard.whole(8192, 0);
        ChatEngine engine = engine(shard, 8);
        events(engine, request("t1", "session", true, PROMPT, settings(1, List.of(), false, 0)));
        List<GenerationEvent> again = events(engine, request("t2", "session", true, PROMPT,
                settings(1, List.of(), false, 0)));
        assertEquals(PROMPT.length - 1, assertInstanceOf(Started.class, again.getFirst()).cachedPromptTokens());
    }

    @Test
    void cancelByRequestIdFinishesCancelledAndReleases() throws Exception {
        FakeShard shard = FakeShard.whole(8192, 0);
        shard.stepDelay(10);
        ChatEngine engine = engine(shard, 8);
        AssertSubscriber<GenerationEvent> subscriber = engine.generate(request("r", "s", false, PROMPT,
                settings(10_000, List.of(), false, 0))).subscribe().withSubscriber(AssertSubscriber.create(10_000));
        subscriber.awaitItems(4, WAIT);
        assertTrue(engine.cancel("r"));
        subscriber.awaitCompletion(WAIT);
        Finished finished = finished(subscriber.getItems());
        assertEquals(FinishReason.CANCELLED, finished.reason());
        assertTrue(finished.completionIds().length < 100);
        assertEquals(0, shard.sequencesHeld());
        assertFalse(engine.cancel("r"), "the request is gone");
    }

    @Test
    void cancellingTheSubscriptionStopsAndReleases() throws Exception {
        FakeShard shard = FakeShard.whole(8192, 0);
        shard.stepDelay(10);
        ChatEngine engine = engine(shard, 8);
        AssertSubscriber<GenerationEvent> subscriber = engine.generate(request("r", "s", false, PROMPT,
                settings(10_000, List.of(), false, 0))).subscribe().withSubscriber(AssertSubscriber.create(10_000));
        subscriber.awaitItems(3, WAIT);
        subscriber.cancel();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (shard.sequencesHeld() > 0 || engine.runningSequences() > 0) {
            assertTrue(System.nanoTime() < deadline, "KV still held after cancellation");
            Thread.sleep(5);
        }
        int steps = shard.requests().size();
        Thread.sleep(100);
        assertEquals(steps, shard.requests().size(), "no steps after cancellation");
    }

    @Test
    void refusalsComeAsFailures() throws Exception {
        FakeShard shard = FakeShard.whole(8192, 0);
        ChatEngine engine = engine(shard, 1);
        java.util.concurrent.CountDownLatch gate = new java.util.concurrent.CountDownLatch(1);
        shard.gate(gate);
        AssertSubscriber<GenerationEvent> first = engine.generate(request("a", "sa", false, PROMPT,
                settings(3, List.of(), false, 0))).subscribe().withSubscriber(AssertSubscriber.create(100));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (engine.runningSequences() == 0) {
            assertTrue(System.nanoTime() < deadline);
            Thread.sleep(5);
        }
        AssertSubscriber<GenerationEvent> second = engine.generate(request("b", "sb", false, PROMPT,
                settings(3, List.of(), false, 0))).subscribe().withSubscriber(AssertSubscriber.create(100));

        assertKind(GatewayException.Kind.ALREADY_EXISTS, engine, request("a", "other", false, PROMPT,
                settings(3, List.of(), false, 0)));
        assertKind(GatewayException.Kind.FAILED_PRECONDITION, engine, request("c", "sa", false, PROMPT,
                settings(3, List.of(), false, 0)));
        assertKind(GatewayException.Kind.RESOURCE_EXHAUSTED, engine, request("d", "sd", false, PROMPT,
                settings(3, List.of(), false, 0)));
        assertKind(GatewayException.Kind.INVALID_ARGUMENT, engine, request("e", "se", false, new int[] {200_000},
                settings(3, List.of(), false, 0)));
        gate.countDown();
        first.awaitCompletion(WAIT);
        second.awaitCompletion(WAIT);
    }

    @Test
    void shardDownFailsWithUnavailable() {
        FakeShard shard = FakeShard.whole(8192, 0);
        ChatEngine engine = engine(shard, 8);
        shard.down(true);
        assertKind(GatewayException.Kind.UNAVAILABLE, engine, request("r", "s", false, PROMPT,
                settings(3, List.of(), false, 0)));
    }

    private static void assertKind(GatewayException.Kind kind, ChatEngine engine, GenerationRequest request) {
        GatewayException e = assertThrows(GatewayException.class,
                () -> engine.generate(request).collect().asList().await().atMost(WAIT));
        assertEquals(kind, e.kind(), e.getMessage());
    }
}
