package qwen.gateway.routing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import qwen.gateway.chat.ChatEngine;
import qwen.gateway.chat.ChatTemplate;
import qwen.gateway.chat.Conversation;
import qwen.gateway.chat.GenerationDefaults;
import qwen.gateway.chat.PromptBuilder;
import qwen.gateway.chat.Turn;
import qwen.gateway.shard.Pipeline;
import qwen.gateway.shard.ShardClient;
import qwen.gateway.shard.ShardTransport;
import qwen.gateway.routing.RoutedTurns.Result;
import qwen.gateway.testing.Await;
import qwen.gateway.testing.ShardProcess;
import qwen.gateway.tokenizer.QwenTokenizer;

/**
 * Two pipeline replicas, each one real shard process with the whole TINY model. A session's turns
 * go to one replica; when that replica's shard is killed the router routes around it and the next
 * turn runs on the other replica, prefilling the history; when the shard is back the session
 * returns to it (whose KV was lost with the process, so it prefills again).
 */
@Timeout(300)
class ReplicaFailoverTest {

    private static final QwenTokenizer TOKENIZER = QwenTokenizer.bundled();
    private static final PromptBuilder PROMPTS = new PromptBuilder(new ChatTemplate(TOKENIZER), GenerationDefaults.bundled());
    private static final Duration WAIT = Duration.ofSeconds(60);

    private static ShardProcess first;
    private static ShardProcess second;
    private static Pipeline firstPipeline;
    private static ReplicaRouter router;

    @BeforeAll
    static void start() {
        first = ShardProcess.start("0-1");
        second = ShardProcess.start("0-1");
        firstPipeline = Pipeline.open(List.of(ShardClient.create(first.address(), Duration.ofSeconds(5))),
                Duration.ofSeconds(30));
        router = new ReplicaRouter(List.of(List.of(first.address()), List.of(second.address())), () -> firstPipeline,
                Duration.ofSeconds(30), ShardTransport.PLAINTEXT, Duration.ofMillis(200),
                pipeline -> new ChatEngine(TOKENIZER, pipeline, 512, 16));
        waitFor(() -> router.up(0) && router.up(1), "both replicas up");
    }

    @AfterAll
    static void stop() {
        if (router != null) {
            router.close();
        }
        if (firstPipeline != null) {
            firstPipeline.close();
        }
        for (ShardProcess p : new ShardProcess[] {first, second}) {
            if (p != null) {
                p.close();
            }
        }
    }

    @Test
    void aSessionKeepsGoingWhenItsReplicaIsRemovedAndComesBack() {
        // A session (sequence id) whose home is replica 0, the one whose shard this test kills.
        String sequence = null;
        for (int i = 0; sequence == null; i++) {
            if (router.route("session-failover-" + i) == 0) {
                sequence = "session-failover-" + i;
            }
        }
        String system = "You are a helpful assistant.";
        Conversation one = new Conversation(system, List.of(), "Hello!");
        Result turn1 = run(sequence, PROMPTS.build(one), "t1");
        assertEquals(0, turn1.started().cachedPromptTokens());

        List<Turn> history = List.of(new Turn("Hello!", turn1.finished().text().strip()));
        Result turn2 = run(sequence, PROMPTS.build(new Conversation(system, history, "And then?")), "t2");
        assertTrue(turn2.started().cachedPromptTokens() > 0, "turn 2 reuses replica 0's KV");

        first.kill();
        waitFor(() -> !router.up(0), "replica 0 seen down");
        assertEquals(1, router.route(sequence), "the session moves to replica 1");
        List<Turn> longer = List.of(history.getFirst(), new Turn("And then?", turn2.finished().text().strip()));
        int[] prompt3 = PROMPTS.build(new Conversation(system, longer, "Thanks!"));
        Result turn3 = run(sequence, prompt3, "t3");
        assertEquals(0, turn3.started().cachedPromptTokens(), "replica 1 holds none of it: the history is prefilled");
        assertEquals(prompt3.length, turn3.started().promptTokens());
        assertTrue(turn3.finished().usage().completionTokens() > 0);

        first.restart(WAIT);
        waitFor(() -> router.up(0), "replica 0 back");
        assertEquals(0, router.route(sequence), "the session returns to its replica");
        Result turn4 = run(sequence, PROMPTS.build(new Conversation(system, longer, "Once more.")), "t4");
        assertTrue(turn4.finished().usage().completionTokens() > 0, "the restarted shard lost the KV; the turn re-prefills");
    }

    private static Result run(String sequence, int[] prompt, String requestId) {
        return RoutedTurns.run(router, sequence, prompt, requestId, 4, WAIT);
    }

    private static void waitFor(BooleanSupplier condition, String what) {
        Await.until(condition, WAIT, what);
    }
}
