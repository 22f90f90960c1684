package qwen.service.metrics;

import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import jakarta.inject.Singleton;
import java.time.Duration;
import java.util.function.ToDoubleFunction;
import qwen.service.grpc.ServingPhase;
import qwen.service.grpc.ShardRuntime;

/**
 * The shard's Prometheus metrics (on /q/metrics of its HTTP port), listed in the README's metrics
 * table: the time and size of every step it runs, and its KV cache use. Each pod is one shard, so
 * Prometheus' pod label tells the shards of a pipeline apart.
 */
@Singleton
public class ShardMetrics {

    private static final Duration[] STEP_BUCKETS = seconds(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30);
    private static final double[] BATCH_BUCKETS = {1, 2, 4, 8, 16, 32, 64, 128, 256};
    private static final double[] TOKEN_BUCKETS = {1, 4, 16, 64, 128, 256, 512, 1024, 2048};

    private final Timer stepTime;
    private final DistributionSummary batchSize;
    private final DistributionSummary stepTokens;

    public ShardMetrics(MeterRegistry registry, ShardRuntime runtime) {
        this.stepTime = Timer.builder("qwen.shard.step.duration")
                .description("Time the shard took to run one step (all its sequences), queueing excluded")
                .serviceLevelObjectives(STEP_BUCKETS).register(registry);
        this.batchSize = DistributionSummary.builder("qwen.shard.step.batch.size")
                .description("Sequences in one step").serviceLevelObjectives(BATCH_BUCKETS).register(registry);
        this.stepTokens = DistributionSummary.builder("qwen.shard.step.tokens").baseUnit("tokens")
                .description("Tokens in one step over all its sequences (decode tokens plus prefill chunks)")
                .serviceLevelObjectives(TOKEN_BUCKETS).register(registry);
        gauge(registry, "qwen.shard.kv.cache.usage.ratio", "Share of the KV cache budget in use, 0 to 1", runtime,
                r -> serving(r) ? (double) r.engine().kvPool().bytesInUse() / r.engine().kvPool().budgetBytes() : 0);
        gauge(registry, "qwen.shard.kv.cache.used.bytes", "Bytes of KV cache in use", runtime,
                r -> serving(r) ? r.engine().kvPool().bytesInUse() : 0);
        gauge(registry, "qwen.shard.sequences", "Sequences whose KV the shard holds", runtime, ShardRuntime::sequencesHeld);
        gauge(registry, "qwen.shard.serving", "1 while the shard serves steps (weights loaded, warm-up done), else 0",
                runtime, r -> serving(r) ? 1 : 0);
    }

    /**
     * Records one step.
     *
     * @param sequences entries in the step
     * @param tokens tokens over all entries
     * @param nanos time the engine took
     */
    public void step(int sequences, int tokens, long nanos) {
        stepTime.record(Duration.ofNanos(nanos));
        batchSize.record(sequences);
        stepTokens.record(tokens);
    }

    private static boolean serving(ShardRuntime runtime) {
        return runtime.phase() == ServingPhase.SERVING;
    }

    private static void gauge(MeterRegistry registry, String name, String description, ShardRuntime runtime,
                              ToDoubleFunction<ShardRuntime> value) {
        Gauge.builder(name, runtime, value).description(description).strongReference(true).register(registry);
    }

    private static Duration[] seconds(double... bounds) {
        Duration[] durations = new Duration[bounds.length];
        for (int i = 0; i < bounds.length; i++) {
            durations[i] = Duration.ofNanos(Math.round(bounds[i] * 1e9));
        }
        return durations;
    }

}
