package qwen.gateway.grpc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import qwen.gateway.chat.ChatEngine;
import qwen.gateway.chat.GatewayException;
import qwen.gateway.chat.GenerationDefaults;
import qwen.gateway.routing.ReplicaRouter;
import qwen.gateway.routing.ReplicaSource;
import qwen.gateway.shard.Pipeline;
import qwen.gateway.shard.PipelineService;
import qwen.gateway.testing.Await;
import qwen.gateway.testing.FakeShard;
import qwen.gateway.tokenizer.QwenTokenizer;
import qwen.proto.chat.v1.ModelInfo;
import qwen.proto.chat.v1.PipelineSummary;
import qwen.proto.chat.v1.ShardSummary;

/**
 * GetModelInfo over several pipeline replicas (in-memory shards, each replica two shards of a
 * 4-layer model): every replica's shards are listed under its pipeline number with their health,
 * and every replica is in ModelInfo.pipelines, up or down with the reason, including one that never
 * connected.
 */
@Timeout(60)
class ModelInfoReplicasTest {

    private static final QwenTokenizer TOKENIZER = QwenTokenizer.bundled();
    private static final Duration WAIT = Duration.ofSeconds(20);

    @Test
    void everyReplicasShardsAndHealthAreDescribed() {
        FakeShard[][] shards = {replica(0), replica(1)};
        List<ReplicaSource> sources = List.of(
                new ReplicaSource(List.of(shards[0][0].address(), shards[0][1].address()),
                        () -> Pipeline.open(List.of(shards[0]), Duration.ofSeconds(5)), true),
                new ReplicaSource(List.of(shards[1][0].address(), shards[1][1].address()),
                        () -> Pipeline.open(List.of(shards[1]), Duration.ofSeconds(5)), true));
        try (ReplicaRouter router = new ReplicaRouter(sources, Duration.ofMillis(50),
                pipeline -> new ChatEngine(TOKENIZER, pipeline, 256, 16))) {
            PipelineService pipelines = new PipelineService(null);
            pipelines.routeOver(router);
            Await.until(() -> router.up(0) && router.up(1), WAIT, "both replicas up");

            ModelInfo both = info(router, pipelines);
            assertEquals(2, both.getPipelinesCount(), both.toString());
            assertEquals(4, both.getShardsCount(), "two shards in each of two replicas: " + both);
            for (int r = 0; r < 2; r++) {
                PipelineSummary replica = both.getPipelines(r);
                assertEquals(r, replica.getPipeline());
                assertTrue(replica.getServing());
                assertEquals("", replica.getProblem());
                assertEquals(2, replica.getShardCount());
                assertEquals("0-1", shardOf(both, r, 0).getLayerRange());
                assertEquals("2-3", shardOf(both, r, 1).getLayerRange());
                assertTrue(shardOf(both, r, 1).getServing());
            }

            shards[1][1].down(true);
            Await.until(() -> !router.up(1), WAIT, "replica 1 seen down");
            ModelInfo oneDown = info(router, pipelines);
            assertTrue(oneDown.getPipelines(0).getServing());
            assertFalse(oneDown.getPipelines(1).getServing());
            assertTrue(oneDown.getPipelines(1).getProblem().contains("replica-1-b:9100"), oneDown.toString());
            assertTrue(shardOf(oneDown, 1, 0).getServing(), "replica 1's first shard still answers");
            assertFalse(shardOf(oneDown, 1, 1).getServing(), "its second does not");
            assertTrue(shardOf(oneDown, 0, 1).getServing());
        }
    }

    @Test
    void aReplicaThatNeverConnectedIsListedWithoutShards() {
        FakeShard[] up = replica(1);
        List<ReplicaSource> sources = List.of(
                new ReplicaSource(List.of("nowhere:1"), () -> {
                    throw new GatewayException(GatewayException.Kind.UNAVAILABLE, "nowhere:1 does not answer");
                }, true),
                new ReplicaSource(List.of(up[0].address(), up[1].address()),
                        () -> Pipeline.open(List.of(up), Duration.ofSeconds(5)), true));
        try (ReplicaRouter router = new ReplicaRouter(sources, Duration.ofMillis(50),
                pipeline -> new ChatEngine(TOKENIZER, pipeline, 256, 16))) {
            PipelineService pipelines = new PipelineService(null);
            pipelines.routeOver(router);
            Await.until(() -> router.up(1), WAIT, "replica 1 up");
            ModelInfo info = info(router, pipelines);
            assertEquals(2, info.getPipelinesCount());
            assertFalse(info.getPipelines(0).getServing());
            assertEquals(0, info.getPipelines(0).getShardCount());
            assertTrue(info.getPipelines(0).getProblem().contains("nowhere:1 does not answer"), info.toString());
            assertEquals(2, info.getShardsCount(), "only replica 1's shards are known");
            assertTrue(info.getShardsList().stream().allMatch(s -> s.getPipeline() == 1));
        }
    }

    private static ModelInfo info(ReplicaRouter router, PipelineService pipelines) {
        return ModelInfos.modelInfo(router.anyConnected().orElseThrow().modelCard(), pipelines.liveReplicas(),
                GenerationDefaults.bundled(), 64, TOKENIZER.vocabularySize());
    }

    private static ShardSummary shardOf(ModelInfo info, int pipeline, int position) {
        return info.getShardsList().stream().filter(s -> s.getPipeline() == pipeline).toList().get(position);
    }

    /** A replica of two shards: layers 0-1 (embedding) and 2-3 (head). */
    private static FakeShard[] replica(int r) {
        return new FakeShard[] {
                new FakeShard("replica-" + r + "-a:9100", FakeShard.info(0, 2, 4, true, false)),
                new FakeShard("replica-" + r + "-b:9100", FakeShard.info(2, 4, 4, false, true))};
    }
}
