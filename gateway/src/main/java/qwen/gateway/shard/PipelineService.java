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
 */
@ApplicationScoped
public class PipelineService {

    private static final Logger LOG = Logger.getLogger(PipelineService.class);
    private static final Duration INFO_TIMEOUT = Duration.ofSeconds(5);
    private static final long RETRY_MILLIS = 1000;

    private final GatewayConfig config;
    private final ShardTransport transport;
    private volatile Pipeline pipeline;
    private volatile String problem = "not connected yet";
    private volatile boolean stopping;
    private Thread background;

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

    /** Whether the pipeline is connected. */
    public boolean connected() {
        return pipeline != null;
    }

    /**
     * The model served, as the shards described it at start-up, under {@code qwen.gateway.model-id}
     * when set.
     *
     * @throws GatewayException UNAVAILABLE while the shards are not connected
     */
    public ModelCard modelCard() {
        return named(pipeline().modelCard());
    }

    /**
     * Like {@link #modelCard()} with each shard's current KV use and whether it answers now. Blocks
     * on one Info call per shard (up to 5 s each): call it off the event loop.
     */
    public ModelCard liveModelCard() {
        return named(pipeline().describe());
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
            pipeline = Pipeline.open(shards, config.stepTimeout());
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

    private static void sleep() {
        try {
            TimeUnit.MILLISECONDS.sleep(RETRY_MILLIS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
