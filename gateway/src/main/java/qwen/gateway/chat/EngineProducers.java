package qwen.gateway.chat;

import io.quarkus.runtime.Startup;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.inject.Disposes;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.IntStream;
import org.jboss.logging.Logger;
import qwen.gateway.GatewayConfig;
import qwen.gateway.metrics.GenerationMetrics;
import qwen.gateway.routing.ReplicaAddresses;
import qwen.gateway.routing.ReplicaRouter;
import qwen.gateway.routing.RoutingConfig;
import qwen.gateway.session.PostgresSessionStore;
import qwen.gateway.session.SessionStore;
import qwen.gateway.shard.PipelineService;
import qwen.gateway.tokenizer.QwenTokenizer;

/**
 * Makes the engine's beans: the tokenizer and generation defaults the configuration names (or the
 * bundled ones), the chat template, and the {@link Generations} engine.
 */
@Singleton
public class EngineProducers {

    private static final Logger LOG = Logger.getLogger(EngineProducers.class);

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
     * over one engine per replica, made at start-up so that its probes drive readiness from the
     * start (a gateway whose replica 0 is down is ready while another replica is up). With the
     * PostgreSQL session store, its requests are registered there so that any gateway can cancel them.
     */
    @Produces
    @ApplicationScoped
    @Startup
    Generations generations(QwenTokenizer tokenizer, PipelineService pipelines, GatewayConfig config,
                            RoutingConfig routing, GenerationMetrics metrics, SessionStore store) {
        Generations engine = engine(tokenizer, pipelines, config, routing, metrics);
        // Gateways sharing the networked store relay Cancel to the gateway that runs the request.
        return store instanceof PostgresSessionStore shared
                ? shared.shareCancellation(engine, config.sessions().cancelPollInterval()) : engine;
    }

    private Generations engine(QwenTokenizer tokenizer, PipelineService pipelines, GatewayConfig config,
                               RoutingConfig routing, GenerationMetrics metrics) {
        if (routing.replicas() == 1) {
            return metrics.meter(new ChatEngine(tokenizer, pipelines::pipeline, config.maxStepTokens(),
                    config.maxQueuedRequests(), instanceId(config.sessions().resolvedDir().resolve(INSTANCE_ID_FILE))));
        }
        ReplicaAddresses.check(config.shards(), routing.replicas());
        List<List<String>> replicas = IntStream.range(0, routing.replicas())
                .mapToObj(r -> ReplicaAddresses.of(config.shards(), r)).toList();
        ReplicaRouter router = new ReplicaRouter(ReplicaRouter.sources(replicas, pipelines::pipeline,
                config.stepTimeout(), config.pipelineMicroBatches(), pipelines.transport()), routing.probeInterval(),
                pipeline -> new ChatEngine(tokenizer, pipeline, config.maxStepTokens(), config.maxQueuedRequests()));
        pipelines.routeOver(router);
        return metrics.meter(router, router::runningSequences, router::queuedRequests);
    }

    /** Where the gateway keeps its id on the shards, beside the sessions, so that a restart finds it. */
    static final String INSTANCE_ID_FILE = "gateway-instance-id";

    /** Reads the id in {@code file}, or makes one and writes it there. */
    static String instanceId(Path file) {
        try {
            if (Files.isRegularFile(file)) {
                String id = Files.readString(file, StandardCharsets.US_ASCII).strip();
                if (id.matches("[0-9a-f]{8}")) {
                    return id;
                }
                LOG.warnf("%s does not hold 8 hex digits; making a new gateway instance id", file);
            }
            String id = HexFormat.of().toHexDigits(new SecureRandom().nextInt());
            Files.createDirectories(file.getParent());
            Path temp = file.resolveSibling(file.getFileName() + ".new");
            Files.writeString(temp, id + "\n", StandardCharsets.US_ASCII);
            Files.move(temp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            return id;
        } catch (IOException e) {
            throw new IllegalStateException("cannot keep the gateway instance id in " + file + ": " + e.getMessage(), e);
        }
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
