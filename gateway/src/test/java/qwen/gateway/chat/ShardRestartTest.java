package qwen.gateway.chat;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.smallrye.mutiny.helpers.test.AssertSubscriber;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import qwen.gateway.chat.GenerationEvent.Finished;
import qwen.gateway.shard.Pipeline;
import qwen.gateway.shard.ShardClient;
import qwen.gateway.testing.ShardProcess;
import qwen.gateway.tokenizer.QwenTokenizer;

/**
 * A shard of a two-shard pipeline crashes and comes back: the generation running then fails with
 * UNAVAILABLE, and a session's next turn, whose KV the restarted shard lost, is prefilled again
 * without the client noticing and gives the ids of a fresh sequence. Needs the built service jar.
 */
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class ShardRestartTest {

    private static final QwenTokenizer TOKENIZER = QwenTokenizer.bundled();
    private static final PromptBuilder PROMPTS = new PromptBuilder(new ChatTemplate(TOKENIZER),
            GenerationDefaults.bundled());
    private static final Duration WAIT = Duration.ofSeconds(60);

    private static ShardProcess lower;
    private static ShardProcess upper;
    private static ChatEngine engine;

    @BeforeAll
    static void start() {
        lower = ShardProcess.start("0-0");
        upper = ShardProcess.start("1-1");
        Pipeline pipeline = Pipeline.open(List.of(ShardClient.create(lower.address(), Duration.ofSeconds(10)),
                ShardClient.create(upper.address(), Duration.ofSeconds(10))), Duration.ofSeconds(60));
        engine = new ChatEngine(TOKENIZER, () -> pipeline, 512, 16);
    }

    @AfterAll
    static void stop() {
        if (engine != null) {
            engine.close();
        }
        for (ShardProcess shard : new ShardProcess[] {lower, upper}) {
            if (shard != null) {
                shard.close();
            }
        }
    }

    private static GenerationRequest request(String id, String sequence, boolean keep, int[] prompt, int max) {
        return new GenerationRequest(id, null, sequence, keep, prompt,
                new GenerationSettings(max, true, 1f, 0, 1f, 1.1f, 5L, List.of(), false, 0));
    }

    private static Finished finished(GenerationRequest request) {
        List<GenerationEvent> events = engine.generate(request).collect().asList().await().atMost(WAIT);
        return assertInstanceOf(Finished.class, events.getLast());
    }

    @Test
    void aRestartedShardFailsTheRunningGenerationAndLaterTurnsPrefillAgain() {
        int[] first = PROMPTS.build(new Conversation(ChatTemplate.DEFAULT_SYSTEM_PROMPT, List.of(), "Hi there"));
        Finished turn1 = finished(request("t1", "session", true, first, 6));
        int generated = turn1.completionIds().length;
        int[] second = Arrays.copyOf(first, first.length + generated - 1 + 3);
        System.arraycopy(turn1.completionIds(), 0, second, first.length, generated - 1);
        System.arraycopy(new int[] {198, 151644, 872}, 0, second, first.length + generated - 1, 3);

        AssertSubscriber<GenerationEvent> running = engine.generate(request("long", "long", false, first, 100_000))
                .subscribe().withSubscriber(AssertSubscriber.create(Long.MAX_VALUE));
        running.awaitItems(4, WAIT);
        upper.kill();
        running.awaitFailure(WAIT);
        GatewayException down = assertInstanceOf(GatewayException.class, running.getFailure());
        assertEquals(GatewayException.Kind.UNAVAILABLE, down.kind());
        assertTrue(down.getMessage().contains(upper.address()), down.getMessage());

        upper.restart(ShardProcess.DEFAULT_START_TIMEOUT);
        Finished turn2 = finished(request("t2", "session", true, second, 6));
        Finished fresh = finished(request("t3", "fresh", false, second, 6));
        assertArrayEquals(fresh.completionIds(), turn2.completionIds());
        assertEquals(first.length + generated - 1, turn2.usage().cachedPromptTokens(),
                "planned from the ledger; the shard's loss is handled under it");
    }

    @Test
    void requestsFailFastWhileAShardIsDown() {
        upper.kill();
        try {
            int[] prompt = PROMPTS.build(new Conversation(ChatTemplate.DEFAULT_SYSTEM_PROMPT, List.of(), "Hello"));
            GatewayException e = assertThrows(GatewayException.class, () -> engine.generate(
                    request("down", "down", false, prompt, 4)).collect().asList().await().atMost(WAIT));
            assertEquals(GatewayException.Kind.UNAVAILABLE, e.kind());
        } finally {
            upper.restart(ShardProcess.DEFAULT_START_TIMEOUT);
        }
    }
}
