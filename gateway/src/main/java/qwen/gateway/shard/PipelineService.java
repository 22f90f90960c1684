package qwen.gateway.shard;

import io.quarkus.runtime.Quarkus;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.jboss.logging.Logger;
import qwen.gateway.GatewayConfig;
import qwen.gateway.chat.GatewayException;
import qwen.gateway.routing.ReplicaAddresses;

/**
 * The gateway's pipeline across its configured shards, built at start-up.
 *
 * <p>On start-up it asks every shard's Info, retrying while shards are unreachable or loading for up
 * to {@code qwen.gateway.startup-wait}. A layout that does not form one model (a gap, an overlap, no
 * embedding or head, disagreeing shards) stops the gateway with a message naming the problem. Shards
 * still unreachable after the wait do not stop it: it keeps connecting in the background and answers
 * UNAVAILABLE until they are up.
 *
 * <p>Once connected it asks every shard's Info once a second: while a shard does not answer, the
 * gateway is not {@link #serving()} (readiness down, gRPC health NOT_SERVING). The shard clients
 * reconnect by themselves, with backoff; the first answer makes the gateway serve again.
 *
 * <p>With several pipeline replicas this pipeline is replica 0, and the router over all of them
 * ({@link #routeOver}) decides: the gateway serves while at least one replica has every shard
 * answering, and the model card comes from any connected replica.
 */
@ApplicationScoped
public class PipelineService {

    private static final Logger LOG = Logger.getLogger(PipelineService.class);
    private static final Duration INFO_TIMEOUT = Duration.ofSeconds(5);
    private static final long RETRY_MILLIS = 1000;
    private static final long PROBE_MILLIS = 1000;

    private final GatewayConfig config;
    private final ShardTransport transport;
    private volatile Pipeline pipeline;
    private volatile String problem = "not connected yet";
    private volatile boolean stopping;
    private volatile List<String> unreachable = List.of();
    private volatile ReplicaView replicas;
    private Thread background;
    private Thread prober;

    @Inject
    public PipelineService(GatewayConfig config, ShardTransport.Config tls) {
        this.config = config;
        this.transport = tls == null ? ShardTransport.PLAINTEXT : ShardTransport.of(tls);
    }

    /** Plaintext to the shards. */
    public PipelineService(GatewayConfig config) {
        this(config, null);
    }

    /** How this gateway reaches its shards (plaintext or TLS). */
    public ShardTransport transport() {
        return transport;
    }

    void onStart(@Observes StartupEvent event) {
        config.check();
        long deadline = System.nanoTime() + config.startupWait().toNanos();
        while (!tryConnect()) {
            if (System.nanoTime() >= deadline) {
                break;
            }
            sleep();
        }
        if (pipeline != null) {
            startProbing();
            return;
        }
        LOG.warnf("the shards %s are not reachable yet (%s); starting anyway and retrying in the background",
                config.shards(), problem);
        background = Thread.ofPlatform().name("qwen-pipeline-connect").daemon().start(this::connectInBackground);
    }

    void onStop(@Observes ShutdownEvent event) {
        stopping = true;
        if (background != null) {
            background.interrupt();
        }
        if (prober != null) {
            prober.interrupt();
        }
        Pipeline current = pipeline;
        if (current != null) {
            current.close();
        }
    }

    /**
     * The connected pipeline.
     *
     * @throws GatewayException UNAVAILABLE while the shards are not connected
     */
    public Pipeline pipeline() {
        Pipeline current = pipeline;
        if (current == null) {
            throw new GatewayException(GatewayException.Kind.UNAVAILABLE,
                    "the shard pipeline " + config.shards() + " is not connected: " + problem);
        }
        return current;
    }

    /**
     * Hands health and the model card over to the router of several pipeline replicas (this
     * pipeline is its replica 0).
     */
    public void routeOver(ReplicaView view) {
        this.replicas = view;
    }

    /** Whether the pipeline is connected (it may have a shard down now: see {@link #serving()}). */
    public boolean connected() {
        return pipeline != null;
    }

    /**
     * Whether the gateway can serve: with one replica, the pipeline is connected and every shard
     * answered its last health probe; with several, at least one replica is up.
     */
    public boolean serving() {
        ReplicaView view = replicas;
        if (view != null) {
            return view.states().stream().anyMatch(ReplicaState::up);
        }
        return pipeline != null && unreachable.isEmpty();
    }

    /** Every pipeline replica's state (one, replica 0, without a router), as last probed. */
    public List<ReplicaState> replicaStates() {
        ReplicaView view = replicas;
        if (view != null) {
            return view.states();
        }
        return List.of(new ReplicaState(0, ReplicaAddresses.of(config.shards(), 0), serving(), ownProblem()));
    }

    /** Why the gateway is not {@link #serving()}, or empty when it is. */
    public String problem() {
        if (serving()) {
            return "";
        }
        ReplicaView view = replicas;
        if (view != null) {
            return "no pipeline replica is up: " + String.join("; ", view.states().stream()
                    .map(s -> "replica " + s.index() + " " + s.problem()).toList());
        }
        return ownProblem();
    }

    private String ownProblem() {
        if (pipeline == null) {
            return "not connected to the shards " + config.shards() + ": " + problem;
        }
        List<String> down = unreachable;
        return down.isEmpty() ? "" : "shard(s) not answering: " + String.join("; ", down);
    }

    /**
     * The model served, as the shards described it at start-up, under {@code qwen.gateway.model-id}
     * when set.
     *
     * @throws GatewayException UNAVAILABLE while the shards are not connected
     */
    public ModelCard modelCard() {
        return named(anyPipeline().modelCard());
    }

    /**
     * Like {@link #modelCard()} with each shard's current KV use and whether it answers now. Blocks
     * on one Info call per shard (up to 5 s each): call it off the event loop.
     */
    public ModelCard liveModelCard() {
        return named(anyPipeline().describe());
    }

    /**
     * Every pipeline replica, replica 0 first, with its last probed state and its shards' current
     * KV use and health (one Info call per shard of each connected replica, up to 5 s each: call it
     * off the event loop). A replica that never connected has no shards listed.
     */
    public List<ReplicaShards> liveReplicas() {
        ReplicaView view = replicas;
        if (view == null) {
            Pipeline current = pipeline;
            return List.of(new ReplicaShards(replicaStates().getFirst(),
                    current == null ? List.of() : current.describe().shards()));
        }
        return view.states().stream().map(state -> new ReplicaShards(state,
                view.connected(state.index()).map(p -> p.describe().shards()).orElse(List.of()))).toList();
    }

    /** This pipeline, or while it is not connected, another replica's. */
    private Pipeline anyPipeline() {
        ReplicaView view = replicas;
        if (pipeline == null && view != null) {
            return view.anyConnected().orElseGet(this::pipeline);
        }
        return pipeline();
    }

    private ModelCard named(ModelCard card) {
        return config.modelId().map(id -> new ModelCard(id, card.numLayers(), card.hiddenSize(), card.seqLength(),
                card.vocabSize(), card.randomWeights(), card.shards())).orElse(card);
    }

    /** One attempt; a bad layout propagates, unreachable shards return false. */
    private boolean tryConnect() {
        List<Shard> shards = ReplicaAddresses.of(config.shards(), 0).stream()
                .map(address -> (Shard) ShardClient.create(address, INFO_TIMEOUT, transport)).toList();
        try {
            pipeline = Pipeline.open(shards, config.stepTimeout(), config.pipelineMicroBatches());
            return true;
        } catch (ShardException e) {
            problem = e.getMessage();
            LOG.debugf("shards not ready: %s", problem);
            return false;
        }
    }

    private void connectInBackground() {
        while (!stopping && pipeline == null) {
            try {
                if (tryConnect()) {
                    LOG.infof("connected to the shards %s", config.shards());
                    startProbing();
                    return;
                }
            } catch (PipelineLayoutException e) {
                LOG.error("stopping the gateway: " + e.getMessage());
                Quarkus.asyncExit(1);
                return;
            }
            sleep();
        }
    }

    private synchronized void startProbing() {
        if (prober == null && !stopping) {
            prober = Thread.ofPlatform().name("qwen-shard-health").daemon().start(this::probe);
        }
    }

    /** Asks the shards' Info once a second and logs each change of health. */
    private void probe() {
        while (!stopping) {
            try {
                List<String> down = pipeline.unreachableShards();
                if (!down.equals(unreachable)) {
                    if (down.isEmpty()) {
                        LOG.info("every shard answers again; serving");
                    } else {
                        LOG.warnf("not serving: %s", String.join("; ", down));
                    }
                }
                unreachable = List.copyOf(down);
                TimeUnit.MILLISECONDS.sleep(PROBE_MILLIS);
            } catch (InterruptedException e) {
                return;
            } catch (RuntimeException e) {
                LOG.error("shard health probe failed", e);
                sleep();
            }
        }
    }

    private static void sleep() {
        try {
            TimeUnit.MILLISECONDS.sleep(RETRY_MILLIS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
