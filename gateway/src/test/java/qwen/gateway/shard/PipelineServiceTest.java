package qwen.gateway.shard;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.common.QuarkusTestResource;
import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;
import io.quarkus.test.junit.QuarkusTest;
import jakarta.inject.Inject;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import qwen.gateway.GatewayConfig;
import qwen.gateway.chat.ChatTemplate;
import qwen.gateway.chat.Conversation;
import qwen.gateway.chat.GatewayException;
import qwen.gateway.chat.GenerationEvent;
import qwen.gateway.chat.GenerationRequest;
import qwen.gateway.chat.GenerationSettings;
import qwen.gateway.chat.Generations;
import qwen.gateway.chat.PromptBuilder;
import qwen.gateway.chat.RequestedParams;
import qwen.gateway.chat.GenerationDefaults;
import qwen.gateway.testing.ShardProcess;

/**
 * The gateway's beans over one real shard: configuration, the pipeline built at start-up, the
 * engine; and the start-up rule that a bad layout stops the gateway while unreachable shards do not.
 */
@QuarkusTest
@QuarkusTestResource(value = PipelineServiceTest.OneShard.class, restrictToAnnotatedClass = true)
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class PipelineServiceTest {

    /** One TINY shard with every layer; the gateway's model id set to "test-model". */
    public static final class OneShard implements QuarkusTestResourceLifecycleManager {
        private ShardProcess shard;

        @Override
        public Map<String, String> start() {
            shard = ShardProcess.start("0-1");
            return Map.of("qwen.gateway.shards", shard.address(), "qwen.gateway.model-id", "test-model",
                    "quarkus.grpc.server.host", "127.0.0.1",
                    "quarkus.grpc.server.test-port", Integer.toString(freePort()));
        }

        @Override
        public void stop() {
            if (shard != null) {
                shard.close();
            }
        }
    }

    @Inject
    GatewayConfig config;

    @Inject
    PipelineService pipelines;

    @Inject
    Generations generations;

    @Inject
    PromptBuilder prompts;

    @Inject
    GenerationDefaults defaults;

    @Test
    void configurationDefaults() {
        assertEquals(512, config.maxStepTokens());
        assertEquals(64, config.maxQueuedRequests());
        assertEquals(Path.of(".qwen", "sessions").toAbsolutePath(), config.sessions().resolvedDir());
        assertTrue(config.tokenizer().isEmpty());
    }

    @Test
    void pipelineIsUpAtStartWithTheConfiguredModelId() {
        assertTrue(pipelines.connected());
        ModelCard card = pipelines.modelCard();
        assertEquals("test-model", card.modelId());
        assertEquals(2, card.numLayers());
        assertEquals(64, card.hiddenSize());
        assertTrue(card.randomWeights());
        assertEquals(1, card.shards().size());
        assertTrue(pipelines.liveModelCard().shards().getFirst().serving());
    }

    @Test
    void engineGeneratesThroughTheBeans() {
        int[] prompt = prompts.build(new Conversation(ChatTemplate.DEFAULT_SYSTEM_PROMPT, List.of(), "Hi"));
        GenerationSettings settings = GenerationSettings.resolve(new RequestedParams(4, null, null, null, null, 3L,
                List.of(), false, 0, false), defaults);
        List<GenerationEvent> events = generations.generate(new GenerationRequest("bean-1", null, "bean-1", false,
                prompt, settings)).collect().asList().await().atMost(Duration.ofSeconds(60));
        assertInstanceOf(GenerationEvent.Started.class, events.getFirst());
        assertInstanceOf(GenerationEvent.Finished.class, events.getLast());
    }

    @Test
    void aBadLayoutStopsStartUp() {
        String address = config.shards().getFirst();
        PipelineService twice = new PipelineService(config(List.of(address, address), Duration.ZERO));
        PipelineLayoutException e = assertThrows(PipelineLayoutException.class, () -> twice.onStart(null));
        assertTrue(e.getMessage().contains("layers 0-1 are served by both " + address + " and " + address),
                e.getMessage());
    }

    @Test
    void unreachableShardsDoNotStopStartUp() {
        PipelineService absent = new PipelineService(config(List.of("127.0.0.1:" + freePort()), Duration.ZERO));
        absent.onStart(null);
        try {
            assertFalse(absent.connected());
            GatewayException e = assertThrows(GatewayException.class, absent::pipeline);
            assertEquals(GatewayException.Kind.UNAVAILABLE, e.kind());
        } finally {
            absent.onStop(null);
        }
    }

    @Test
    void badConfigurationNamesTheKey() {
        GatewayConfig bad = new TestConfig(List.of("localhost"), Duration.ZERO, 512);
        IllegalStateException e = assertThrows(IllegalStateException.class, bad::check);
        assertEquals("qwen.gateway.shards: 'localhost' is not host:port (for example 127.0.0.1:9100)", e.getMessage());
        IllegalStateException zero = assertThrows(IllegalStateException.class,
                new TestConfig(List.of("127.0.0.1:1"), Duration.ZERO, 0)::check);
        assertEquals("qwen.gateway.max-step-tokens must be >= 1, got 0", zero.getMessage());
    }

    private static GatewayConfig config(List<String> shards, Duration startupWait) {
        return new TestConfig(shards, startupWait, 512);
    }

    private record TestConfig(List<String> shards, Duration startupWait, int maxStepTokens) implements GatewayConfig {
        @Override
        public Optional<Path> tokenizer() {
            return Optional.empty();
        }

        @Override
        public Optional<Path> generationConfig() {
            return Optional.empty();
        }

        @Override
        public int pipelineMicroBatches() {
            return 0;
        }

        @Override
        public int maxQueuedRequests() {
            return 64;
        }

        @Override
        public Duration stepTimeout() {
            return Duration.ofSeconds(30);
        }

        @Override
        public Sessions sessions() {
            return new Sessions() {
                @Override
                public Store store() {
                    return Store.FILE;
                }

                @Override
                public Optional<String> jdbcUrl() {
                    return Optional.empty();
                }

                @Override
                public String table() {
                    return "qwen_sessions";
                }

                @Override
                public Duration turnLease() {
                    return Duration.ofSeconds(30);
                }

                @Override
                public Duration cancelPollInterval() {
                    return Duration.ofMillis(200);
                }

                @Override
                public Optional<java.nio.file.Path> dir() {
                    return Optional.empty();
                }
            };
        }

        @Override
        public Optional<String> modelId() {
            return Optional.empty();
        }
    }

    private static int freePort() {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
