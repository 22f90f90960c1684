package qwen.gateway;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/**
 * The gateway's configuration, every key under {@code qwen.gateway.}. Set in application.properties,
 * as system properties ({@code -Dqwen.gateway.shards=...}) or environment variables
 * ({@code QWEN_GATEWAY_SHARDS=...}). {@link #check()} runs at start-up and names the key of the
 * first bad value.
 */
@ConfigMapping(prefix = "qwen.gateway")
public interface GatewayConfig {

    /**
     * The shards of the pipeline as {@code host:port} of their gRPC servers, in any order: the
     * gateway orders them by the layers each serves (ShardService.Info).
     */
    @WithDefault("127.0.0.1:9100")
    List<String> shards();

    /** A qwen.tiktoken file; absent: the vocabulary bundled with the gateway. */
    Optional<Path> tokenizer();

    /** A generation_config.json; absent: the bundled copy of Qwen-1_8B-Chat's. */
    Optional<Path> generationConfig();

    /**
     * Tokens one step may carry over all its sequences: decode tokens plus prefill chunks (chunked
     * prefill). The shards' own ShardInfo.max_step_tokens lowers it further.
     */
    @WithDefault("512")
    int maxStepTokens();

    /**
     * Micro-batches per step when the pipeline has several shards: each step's batch is split into
     * this many parts that flow through the shards one behind the other, so that all shards compute
     * at once. 0: as many as there are shards; 1: no split (the shards work in turn).
     */
    @WithDefault("0")
    int pipelineMicroBatches();

    /** Requests that may wait to start; one more is refused at once with RESOURCE_EXHAUSTED. */
    @WithDefault("64")
    int maxQueuedRequests();

    /**
     * How long one step may take on one shard before the gateway gives the shard up as down and
     * fails the step's generations with UNAVAILABLE.
     */
    @WithDefault("120s")
    Duration stepTimeout();

    /**
     * How long start-up waits for the shards to answer Info (they may still be loading weights).
     * Past it the gateway starts anyway, keeps connecting in the background and answers
     * UNAVAILABLE until the pipeline is up. A shard layout that does not form one model stops the
     * gateway whenever it is found.
     */
    @WithDefault("30s")
    Duration startupWait();

    /** Session storage. */
    Sessions sessions();

    /** The model id clients see; absent: the id the shards report (ShardInfo.model_id). */
    Optional<String> modelId();

    /** Session storage settings. */
    interface Sessions {

        /** Where sessions live. */
        enum Store {
            /** Files in {@link #dir()}: one process (the single-machine default). */
            FILE,
            /** A PostgreSQL table at {@link #jdbcUrl()}: shared by every gateway replica. */
            POSTGRES
        }

        /** {@code qwen.gateway.sessions.store}: FILE (default) or POSTGRES. */
        @WithDefault("FILE")
        Store store();

        /**
         * {@code jdbc-url} of the POSTGRES store, {@code jdbc:postgresql://host:5432/db?user=...&password=...}
         * (from a Secret in Kubernetes); required with POSTGRES.
         */
        Optional<String> jdbcUrl();

        /** {@code table} of the POSTGRES store; created when missing. */
        @WithDefault("qwen_sessions")
        String table();

        /**
         * {@code turn-lease} of the POSTGRES store: how long a turn's hold on its session lasts
         * without renewal (renewed every third of it while the turn runs). One turn per session runs
         * at a time across all gateways; a gateway that dies mid-turn holds its sessions this long.
         */
        @WithDefault("30s")
        Duration turnLease();

        /**
         * {@code cancel-poll-interval} of the POSTGRES store: how often a gateway that runs
         * requests looks in the store for Cancels other gateways received for them (at least 10ms).
         * A Cancel received by any gateway stops its request within about this long plus one step.
         */
        @WithDefault("200ms")
        Duration cancelPollInterval();

        /** Directory of the embedded session store; absent: {@code .qwen/sessions} in the working directory. */
        Optional<Path> dir();

        /** {@link #dir()} or its default, absolute. */
        default Path resolvedDir() {
            return dir().orElse(Path.of(".qwen", "sessions")).toAbsolutePath();
        }
    }

    /**
     * Checks the values that a type alone does not, naming the key of the first bad one.
     *
     * @throws IllegalStateException naming the key, the rule and the value
     */
    default void check() {
        if (shards().isEmpty()) {
            throw new IllegalStateException("qwen.gateway.shards must name at least one host:port");
        }
        for (String shard : shards()) {
            checkAddress(shard);
        }
        if (maxStepTokens() < 1) {
            throw new IllegalStateException("qwen.gateway.max-step-tokens must be >= 1, got " + maxStepTokens());
        }
        if (maxQueuedRequests() < 1) {
            throw new IllegalStateException(
                    "qwen.gateway.max-queued-requests must be >= 1, got " + maxQueuedRequests());
        }
        if (pipelineMicroBatches() < 0) {
            throw new IllegalStateException(
                    "qwen.gateway.pipeline-micro-batches must be >= 0, got " + pipelineMicroBatches());
        }
        if (stepTimeout().isNegative() || stepTimeout().isZero()) {
            throw new IllegalStateException("qwen.gateway.step-timeout must be positive, got " + stepTimeout());
        }
        if (startupWait().isNegative()) {
            throw new IllegalStateException("qwen.gateway.startup-wait must not be negative, got " + startupWait());
        }
        tokenizer().ifPresent(file -> checkFile("qwen.gateway.tokenizer", file));
        generationConfig().ifPresent(file -> checkFile("qwen.gateway.generation-config", file));
        if (sessions().store() == Sessions.Store.POSTGRES && sessions().jdbcUrl().filter(u -> !u.isBlank()).isEmpty()) {
            throw new IllegalStateException("qwen.gateway.sessions.store=POSTGRES needs qwen.gateway.sessions.jdbc-url");
        }
        if (sessions().cancelPollInterval().toMillis() < 10) {
            throw new IllegalStateException("qwen.gateway.sessions.cancel-poll-interval must be at least 10ms, got "
                    + sessions().cancelPollInterval());
        }
        modelId().ifPresent(id -> {
            if (id.isBlank()) {
                throw new IllegalStateException("qwen.gateway.model-id must not be blank when set");
            }
        });
    }

    private static void checkAddress(String shard) {
        int colon = shard.lastIndexOf(':');
        String port = colon < 0 ? "" : shard.substring(colon + 1);
        boolean valid = colon > 0 && !port.isEmpty() && port.chars().allMatch(Character::isDigit)
                && port.length() <= 5 && Integer.parseInt(port) > 0 && Integer.parseInt(port) < 65536;
        if (!valid) {
            throw new IllegalStateException(
                    "qwen.gateway.shards: '" + shard + "' is not host:port (for example 127.0.0.1:9100)");
        }
    }

    private static void checkFile(String key, Path file) {
        if (!Files.isRegularFile(file) || !Files.isReadable(file)) {
            throw new IllegalStateException(key + ": " + file.toAbsolutePath() + " is not a readable file");
        }
    }
}
