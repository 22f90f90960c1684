package qwen.service.grpc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static qwen.service.grpc.Steps.PROMPT;
import static qwen.service.grpc.Steps.greedy;

import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import jakarta.inject.Inject;
import java.net.URI;
import java.util.List;
import org.junit.jupiter.api.Test;
import qwen.proto.shard.v1.ReleaseRequest;
import qwen.service.metrics.PrometheusText;

/** The shard's /q/metrics move by exactly what the steps it ran did. */
@QuarkusTest
class ShardMetricsTest {

    @Inject
    ShardRuntime runtime;

    @TestHTTPResource("/q/metrics")
    URI metrics;

    @Test
    void stepsAreCountedWithTheirBatchSizeTokensAndKvUse() throws InterruptedException {
        try (ShardClient client = new ShardClient()) {
            PrometheusText before = PrometheusText.scrape(metrics);
            client.stepOnce(greedy("metrics-a", 0, PROMPT, 0));
            client.stepOnce(greedy("metrics-a", PROMPT.length, new int[] {42}, 0),
                    greedy("metrics-b", 0, PROMPT, 0));
            PrometheusText after = PrometheusText.scrape(metrics);

            assertEquals(2, delta(before, after, "qwen_shard_step_duration_seconds_count"), after.lines("qwen_shard"));
            assertTrue(delta(before, after, "qwen_shard_step_duration_seconds_sum") > 0);
            assertEquals(2, delta(before, after, "qwen_shard_step_batch_size_count"));
            assertEquals(1 + 2, delta(before, after, "qwen_shard_step_batch_size_sum"));
            assertEquals(PROMPT.length + 1 + PROMPT.length, delta(before, after, "qwen_shard_step_tokens_sum"));
            // A one-sequence step falls in the le=1 bucket, the two-sequence one does not.
            assertEquals(1, after.value("qwen_shard_step_batch_size_bucket", "le=\"1.0\"")
                    - before.value("qwen_shard_step_batch_size_bucket", "le=\"1.0\""));

            double expectedRatio = (double) runtime.engine().kvPool().bytesInUse() / runtime.engine().kvPool().budgetBytes();
            assertTrue(expectedRatio > 0, "two sequences hold KV");
            assertEquals(expectedRatio, after.value("qwen_shard_kv_cache_usage_ratio"), 1e-9);
            assertEquals(runtime.engine().kvPool().bytesInUse(), after.value("qwen_shard_kv_cache_used_bytes"), 0.5);
            assertEquals(runtime.sequencesHeld(), after.value("qwen_shard_sequences"), 0.5);
            assertEquals(1, after.value("qwen_shard_serving"));

            client.blocking.release(ReleaseRequest.newBuilder().addAllSequenceIds(List.of("metrics-a", "metrics-b")).build());
            PrometheusText released = PrometheusText.scrape(metrics);
            assertTrue(released.value("qwen_shard_kv_cache_usage_ratio") < after.value("qwen_shard_kv_cache_usage_ratio"),
                    "releasing the two sequences lowers the KV use");
        }
    }

    private static double delta(PrometheusText before, PrometheusText after, String name) {
        double was = before.value(name);
        return after.value(name) - (Double.isNaN(was) ? 0 : was);
    }
}
