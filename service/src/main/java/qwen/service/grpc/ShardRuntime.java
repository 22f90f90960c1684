package qwen.service.grpc;

import io.grpc.Status;
import io.quarkus.grpc.runtime.GrpcServerRecorder;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import io.smallrye.mutiny.Uni;
import jakarta.annotation.Priority;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;
import jakarta.inject.Singleton;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.Supplier;
import org.eclipse.microprofile.config.Config;
import org.jboss.logging.Logger;
import qwen.service.config.DemoCheckpoint;
import qwen.service.config.ShardConfig;
import qwen.service.config.ShardSettings;
import qwen.service.engine.ShardEngine;
import qwen.service.engine.WarmUp;
import qwen.service.model.CheckpointException;
import qwen.service.model.LayerRange;
import qwen.service.model.ModelDirectory;
import qwen.service.model.QwenConfig;

/**
 * The shard's model state for the process: opens the {@link ShardEngine} at start-up (so a bad
 * checkpoint stops the process with one clear log line), owns the single thread that runs all
 * model work, and closes everything on shutdown.
 *
 * <p>Model work never runs on Vert.x event-loop threads: every engine call goes through
 * {@link #execute} or {@link #call}, which queue it on the model thread in arrival order. The
 * engine runs one step at a time anyway, so one thread loses nothing and gives a total order
 * between the steps of all streams and releases.
 *
 * <p>The gRPC server starts listening before Quarkus fires StartupEvent, so for a moment RPCs
 * arrive while the weights load: {@link #phase()} says LOADING then, health reports NOT_SERVING
 * and the RPCs answer UNAVAILABLE.
 */
@Singleton
public class ShardRuntime {

    private static final Logger LOG = Logger.getLogger(ShardRuntime.class);
    /** gRPC's own default when quarkus.grpc.server.max-inbound-message-size is unset (separate server). */
    private static final int GRPC_DEFAULT_MAX_INBOUND = 4 << 20;

    private final ShardConfig config;
    private final Config allConfig;
    private final ExecutorService modelThread = Executors.newSingleThreadExecutor(
            Thread.ofPlatform().name("shard-model").daemon(true).factory());
    private final List<Consumer<ServingPhase>> phaseListeners = new CopyOnWriteArrayList<>();
    private volatile ServingPhase phase = ServingPhase.LOADING;
    private volatile ShardSettings settings;
    private volatile ShardEngine engine;
    private volatile int sequencesHeld;

    @Inject
    public ShardRuntime(ShardConfig config, Config allConfig) {
        this.config = config;
        this.allConfig = allConfig;
    }

    /**
     * Resolves the settings, makes the demo checkpoint if asked, loads the weights and runs one
     * warm-up step; only then does the phase become SERVING (readiness UP).
     */
    void start(@Observes @Priority(10) StartupEvent event) {
        long t0 = System.nanoTime();
        ShardSettings resolved = null;
        try {
            requireGrpcServer();
            resolved = ShardSettings.resolve(config);
            if (resolved.randomWeights()) {
                DemoCheckpoint.prepare(resolved.demo(), resolved.modelDir());
            }
            QwenConfig model = qwen.service.model.Checkpoints.config(resolved.modelDir());
            LayerRange range = checkLayers(resolved, model);
            checkMessageSize(resolved, model);
            settings = resolved;
            engine = ShardEngine.open(resolved.engine(), resolved.device());
            long loaded = System.nanoTime();
            WarmUp.run(engine, model, range);
            LOG.debugf("warm-up step took %d ms", (System.nanoTime() - loaded) / 1_000_000);
            if (resolved.randomWeights()) {
                warnDemo(resolved);
            }
            setPhase(ServingPhase.SERVING);
            LOG.infof("qwen shard ready: model %s, layers %s of %d, %s, KV budget %d MiB (%d tokens), max %d tokens/step, "
                            + "gRPC port %s, loaded in %d ms",
                    resolved.modelId(), range, model.numLayers(), engine.backend().device(),
                    engine.kvPool().budgetBytes() >> 20, engine.kvPool().capacityTokens(range.size()),
                    resolved.maxStepTokens(), allConfig.getOptionalValue("quarkus.grpc.server.port", String.class).orElse("?"),
                    (System.nanoTime() - t0) / 1_000_000);
        } catch (CheckpointException e) {
            LOG.errorf("qwen shard cannot start: bad checkpoint (%s=%s): %s",
                    resolved.randomWeights() ? "qwen.shard.demo-dir" : "qwen.shard.model-dir", resolved.modelDir(), e.getMessage());
            throw e;
        } catch (RuntimeException e) {
            LOG.errorf("qwen shard cannot start: %s", e.getMessage());
            throw e;
        }
    }

    /** Refuses new work, lets queued steps finish, then frees the KV cache and unmaps the weights. */
    void stop(@Observes @Priority(10) ShutdownEvent event) {
        setPhase(ServingPhase.STOPPING);
        modelThread.shutdown();
        try {
            if (!modelThread.awaitTermination(30, TimeUnit.SECONDS)) {
                LOG.warn("model thread still busy after 30 s; closing the engine anyway");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (engine != null) {
            engine.close();
        }
    }

    /**
     * Quarkus' separate gRPC server logs a failed start (a port already bound, say) and carries on
     * without it; a shard without its gRPC port is useless, so stop instead. The verticle count is
     * Quarkus-internal but public; it is the only signal that the server actually listens.
     */
    private static void requireGrpcServer() {
        if (GrpcServerRecorder.getVerticleCount() == 0) {
            throw new IllegalStateException("the gRPC server did not start (see the error above; is quarkus.grpc.server.port "
                    + "already in use?)");
        }
    }

    private static LayerRange checkLayers(ShardSettings s, QwenConfig model) {
        try {
            return s.engine().range(model.numLayers());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("qwen.shard.layers: " + e.getMessage(), e);
        }
    }

    /** A full step of hidden rows must fit in one gRPC message, or the gateway's chunks are refused. */
    private void checkMessageSize(ShardSettings s, QwenConfig model) {
        int limit = allConfig.getOptionalValue("quarkus.grpc.server.max-inbound-message-size", Integer.class)
                .orElse(GRPC_DEFAULT_MAX_INBOUND);
        long needed = (long) s.maxStepTokens() * (model.hiddenSize() * (long) Float.BYTES + 16) + (64 << 10);
        if (needed > limit) {
            throw new IllegalArgumentException("qwen.shard.max-step-tokens=" + s.maxStepTokens() + " needs requests of up to "
                    + needed + " bytes (F32 rows of " + model.hiddenSize() + "), over quarkus.grpc.server.max-inbound-message-size="
                    + limit + "; lower the first or raise the second");
        }
    }

    private static void warnDemo(ShardSettings s) {
        String line = "*".repeat(100);
        LOG.warn(line);
        LOG.warnf("RANDOM-WEIGHT DEMO MODEL %s (in %s): no qwen.shard.model-dir was given, so this shard serves random", s.modelId(), s.modelDir());
        LOG.warn("weights. Everything runs end to end, but the generated text is NOISE. Set qwen.shard.model-dir to a");
        LOG.warn("Qwen-1 checkpoint directory (e.g. Qwen/Qwen-1_8B-Chat) to serve a real model.");
        LOG.warn(line);
    }

    private void setPhase(ServingPhase next) {
        phase = next;
        phaseListeners.forEach(l -> l.accept(next));
    }

    /** Where the process is: LOADING, SERVING or STOPPING. */
    public ServingPhase phase() {
        return phase;
    }

    /** Calls {@code listener} on every later phase change, from the thread that makes it. */
    public void addPhaseListener(Consumer<ServingPhase> listener) {
        phaseListeners.add(listener);
    }

    public void removePhaseListener(Consumer<ServingPhase> listener) {
        phaseListeners.remove(listener);
    }

    /** The open engine; throws UNAVAILABLE while loading or stopping. */
    public ShardEngine engine() {
        requireServing();
        return engine;
    }

    /** The resolved settings; throws UNAVAILABLE while loading or stopping. */
    public ShardSettings settings() {
        requireServing();
        return settings;
    }

    /** Sequences with KV, as of the last step or release (readable without waiting for the model thread). */
    public int sequencesHeld() {
        return sequencesHeld;
    }

    /** Called on the model thread after a step or release, before its answer is sent. */
    void noteSequencesHeld() {
        sequencesHeld = engine.liveSequences();
    }

    /** Throws a gRPC UNAVAILABLE status unless the engine is open and not shutting down. */
    public void requireServing() {
        ServingPhase now = phase;
        if (now != ServingPhase.SERVING) {
            throw Status.UNAVAILABLE.withDescription(now == ServingPhase.LOADING
                    ? "the shard is still loading its weights; retry shortly"
                    : "the shard is shutting down").asRuntimeException();
        }
    }

    /**
     * Queues {@code work} on the model thread, after everything queued before it. Throws
     * UNAVAILABLE when the shard is not serving.
     */
    public void execute(Runnable work) {
        requireServing();
        try {
            modelThread.execute(work);
        } catch (RejectedExecutionException e) {
            throw Status.UNAVAILABLE.withDescription("the shard is shutting down").asRuntimeException();
        }
    }

    /** {@link #execute} for work with a result, as a Uni completed on the model thread. */
    public <T> Uni<T> call(Supplier<T> work) {
        return Uni.createFrom().emitter(emitter -> execute(() -> {
            T result;
            try {
                result = work.get();
            } catch (RuntimeException e) {
                emitter.fail(e);
                return;
            }
            emitter.complete(result);
        }));
    }
}
