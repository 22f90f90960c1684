package qwen.gateway.shard;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import qwen.gateway.testing.FakeShard;
import qwen.proto.shard.v1.ShardInfo;

/** The start-up check that shards form one pipeline, and the messages that name what is wrong. */
class PipelineLayoutTest {

    private static final String A = "127.0.0.1:9100";
    private static final String B = "127.0.0.1:9101";
    private static final String C = "127.0.0.1:9102";

    private static PipelineLayout.Member member(String address, int first, int end, boolean embedding, boolean head) {
        return new PipelineLayout.Member(address, FakeShard.info(first, end, 24, embedding, head));
    }

    private static String refusal(PipelineLayout.Member... members) {
        return assertThrows(PipelineLayoutException.class, () -> PipelineLayout.order(List.of(members))).getMessage();
    }

    private static void assertMentions(String message, String expected) {
        assertTrue(message.contains(expected), () -> "expected \"" + expected + "\" in: " + message);
    }

    @Test
    void ordersContiguousShardsByFirstLayer() {
        List<PipelineLayout.Member> ordered = PipelineLayout.order(List.of(
                member(C, 16, 24, false, true), member(A, 0, 8, true, false), member(B, 8, 16, false, false)));
        assertEquals(List.of(A, B, C), ordered.stream().map(PipelineLayout.Member::address).toList());
    }

    @Test
    void oneShardWithEveryLayerIsAPipeline() {
        assertEquals(1, PipelineLayout.order(List.of(member(A, 0, 24, true, true))).size());
    }

    @Test
    void gapIsNamed() {
        String message = refusal(member(A, 0, 12, true, false), member(B, 14, 24, false, true));
        assertMentions(message, "layers 12-13 are served by no shard");
    }

    @Test
    void overlapNamesBothShards() {
        String message = refusal(member(A, 0, 12, true, false), member(B, 10, 24, false, true));
        assertMentions(message, "layers 10-11 are served by both " + A + " and " + B);
    }

    @Test
    void missingLastLayersAreNamed() {
        String message = refusal(member(A, 0, 22, true, true));
        assertMentions(message, "layers 22-23 are served by no shard");
        assertMentions(message, A + " holds the head but serves layers 0-21, not layer 23");
    }

    @Test
    void missingFirstLayerIsNamed() {
        String message = refusal(member(A, 1, 24, true, true));
        assertMentions(message, "layer 0 is served by no shard");
    }

    @Test
    void noEmbedding() {
        String message = refusal(member(A, 0, 12, false, false), member(B, 12, 24, false, true));
        assertMentions(message, "no shard holds the embedding");
    }

    @Test
    void noHead() {
        String message = refusal(member(A, 0, 12, true, false), member(B, 12, 24, false, false));
        assertMentions(message, "no shard holds the head");
    }

    @Test
    void twoEmbeddings() {
        String message = refusal(member(A, 0, 12, true, false), member(B, 12, 24, true, true));
        assertMentions(message, "the embedding is held by both " + A + " and " + B);
    }

    @Test
    void headOnAnInnerShard() {
        String message = refusal(member(A, 0, 12, true, true), member(B, 12, 24, false, false));
        assertMentions(message, A + " holds the head but serves layers 0-11, not layer 23");
    }

    @Test
    void shardsOfDifferentModels() {
        ShardInfo wide = FakeShard.info(12, 24, 24, false, true).toBuilder().setHiddenSize(2048).build();
        String message = refusal(member(A, 0, 12, true, false), new PipelineLayout.Member(B, wide));
        assertMentions(message, "the shards disagree on hidden_size: " + A + " has 8, " + B + " has 2048");

        ShardInfo other = FakeShard.info(12, 24, 24, false, true).toBuilder().setModelId("Qwen/Qwen-7B-Chat").build();
        assertMentions(refusal(member(A, 0, 12, true, false), new PipelineLayout.Member(B, other)),
                "the shards disagree on model_id");

        ShardInfo deeper = FakeShard.info(12, 32, 32, false, true);
        assertMentions(refusal(member(A, 0, 12, true, false), new PipelineLayout.Member(B, deeper)),
                "the shards disagree on num_layers");
    }

    @Test
    void emptyRange() {
        ShardInfo empty = FakeShard.info(5, 5, 24, true, true);
        assertMentions(refusal(new PipelineLayout.Member(A, empty)),
                A + " reports first_layer 5, end_layer 5, which is no range of a 24-layer model");
    }

    @Test
    void messageListsEveryShard() {
        String message = refusal(member(A, 0, 12, true, false), member(B, 14, 24, false, true));
        assertMentions(message, A + " serves 0-11 (embedding), " + B + " serves 14-23 (head)");
    }

    @Test
    void openAsksInfoAndRefusesABadLayout() {
        FakeShard first = new FakeShard(A, FakeShard.info(0, 12, 24, true, false));
        FakeShard last = new FakeShard(B, FakeShard.info(13, 24, 24, false, true));
        PipelineLayoutException e = assertThrows(PipelineLayoutException.class,
                () -> Pipeline.open(List.of(last, first), Duration.ofSeconds(5)));
        assertMentions(e.getMessage(), "layer 12 is served by no shard");
    }

    @Test
    void openFailsWithTheUnreachableShard() {
        FakeShard down = new FakeShard(B, FakeShard.info(12, 24, 24, false, true));
        down.down(true);
        ShardException e = assertThrows(ShardException.class, () -> Pipeline.open(
                List.of(new FakeShard(A, FakeShard.info(0, 12, 24, true, false)), down), Duration.ofSeconds(5)));
        assertEquals(B, e.address());
        assertTrue(e.unavailable());
    }

    @Test
    void modelCardComesFromInfo() {
        Pipeline pipeline = Pipeline.open(List.of(new FakeShard(B, FakeShard.info(12, 24, 24, false, true)),
                new FakeShard(A, FakeShard.info(0, 12, 24, true, false))), Duration.ofSeconds(5));
        ModelCard card = pipeline.modelCard();
        assertEquals("fake/model", card.modelId());
        assertEquals(24, card.numLayers());
        assertTrue(card.randomWeights());
        assertEquals(List.of(A, B), card.shards().stream().map(ModelCard.ShardDescription::address).toList());
        assertEquals(12, card.shards().get(1).firstLayer());
    }
}
