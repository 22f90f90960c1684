package qwen.gateway.chat;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.inject.Disposes;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.IntStream;
import qwen.gateway.GatewayConfig;
import qwen.gateway.metrics.GenerationMetrics;
import qwen.gateway.routing.ReplicaAddresses;
import qwen.gateway.routing.ReplicaRouter;
import qwen.gateway.routing.RoutingConfig;
import qwen.gateway.shard.PipelineService;
import qwen.gateway.tokenizer.QwenTokenizer;

/**
 * Makes the engine's beans: the tokenizer and generation defaults the configuration names (or the
 * bundled ones), the chat template, and the {@link Generations} engine.
 */
@Singleton
public class EngineProducers {

    @Produces
    @Singleton
    QwenTokenizer tokenizer(GatewayConfig config) {
        return config.tokenizer().map(file -> read("qwen.gateway.tokenizer", file, () -> QwenTokenizer.fromFile(file)))
                .orElseGet(QwenTokenizer::bundled);
    }

    @Produces
    @Singleton
    GenerationDefaults generationDefaults(GatewayConfig config) {
        return config.generationConfig()
                .map(file -> read("qwen.gateway.generation-config", file, () -> GenerationDefaults.fromFile(file)))
                .orElseGet(GenerationDefaults::bundled);
    }

    @Produces
    @Singleton
    ChatTemplate chatTemplate(QwenTokenizer tokenizer) {
        return new ChatTemplate(tokenizer);
    }

    /**
     * The engine, counted in the gateway's metrics; it connects to the scheduler on first use, once
     * the pipeline is up. With several pipeline replicas (qwen.gateway.routing.replicas), a router
     * over one engine per replica.
     */
    @Produces
    @ApplicationScoped
    Generations generations(QwenTokenizer tokenizer, PipelineService pipelines, GatewayConfig config,
                            RoutingConfig routing, GenerationMetrics metrics) {
        if (routing.replicas() == 1) {
            return metrics.meter(new ChatEngine(tokenizer, pipelines::pipeline, config.maxStepTokens(),
                    config.maxQueuedRequests()));
        }
        ReplicaAddresses.check(config.shards(), routing.replicas());
        List<List<String>> replicas = IntStream.range(0, routing.replicas())
                .mapToObj(r -> ReplicaAddresses.of(config.shards(), r)).toList();
        ReplicaRouter router = new ReplicaRouter(replicas, pipelines::pipeline, config.stepTimeout(),
                pipelines.transport(), routing.probeInterval(),
                pipeline -> new ChatEngine(tokenizer, pipeline, config.maxStepTokens(), config.maxQueuedRequests()));
        return metrics.meter(router, router::runningSequences, router::queuedRequests);
    }

    void close(@Disposes Generations generations) throws Exception {
        if (generations instanceof AutoCloseable engine) {
            engine.close();
        }
    }

    private interface Reader<T> {
        T read() throws IOException;
    }

    private static <T> T read(String key, Path file, Reader<T> reader) {
        try {
            return reader.read();
        } catch (IOException | RuntimeException e) {
            throw new IllegalStateException(key + ": cannot load " + file.toAbsolutePath() + ": " + e.getMessage(), e);
        }
    }
}
