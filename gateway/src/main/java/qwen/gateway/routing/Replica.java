package qwen.gateway.routing;

import java.time.Duration;
import java.util.List;
import java.util.function.Supplier;
import org.jboss.logging.Logger;
import qwen.gateway.chat.ChatEngine;
import qwen.gateway.chat.GatewayException;
import qwen.gateway.shard.ModelCard;
import qwen.gateway.shard.Pipeline;
import qwen.gateway.shard.PipelineLayoutException;
import qwen.gateway.shard.Shard;
import qwen.gateway.shard.ShardClient;
import qwen.gateway.shard.ShardException;
import qwen.gateway.shard.ShardTransport;

/**
 * One pipeline replica as the router sees it: its engine, and whether all its shards answered the
 * last probe. Replica 0's pipeline is the gateway's own (PipelineService); the others connect here,
 * on the router's probe thread, retrying until their shards answer.
 */
final class Replica implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(Replica.class);
    private static final Duration INFO_TIMEOUT = Duration.ofSeconds(5);

    private final int index;
    private final List<String> addresses;
    private final Duration stepTimeout;
    private final ShardTransport transport;
    private final Supplier<Pipeline> shared; // replica 0; null for the others
    private final ChatEngine engine;
    private volatile Pipeline own;
    private volatile boolean up;

    /** A replica over a pipeline someone else connects (replica 0). */
    Replica(int index, List<String> addresses, Supplier<Pipeline> pipeline, ReplicaRouter.EngineFactory engines) {
        this.index = index;
        this.addresses = addresses;
        this.stepTimeout = null;
        this.transport = null;
        this.shared = pipeline;
        this.engine = engines.create(pipeline);
    }

    /** A replica that connects its own pipeline to {@code addresses}. */
    Replica(int index, List<String> addresses, Duration stepTimeout, ShardTransport transport,
            ReplicaRouter.EngineFactory engines) {
        this.index = index;
        this.addresses = addresses;
        this.stepTimeout = stepTimeout;
        this.transport = transport;
        this.shared = null;
        this.engine = engines.create(this::pipeline);
    }

    int index() {
        return index;
    }

    ChatEngine engine() {
        return engine;
    }

    boolean up() {
        return up;
    }

    /** Connects if needed and asks every shard whether it serves; updates {@link #up()}. */
    void probe() {
        boolean now;
        try {
            ModelCard card = pipeline().describe();
            now = card.shards().stream().allMatch(ModelCard.ShardDescription::serving);
        } catch (GatewayException | ShardException e) {
            now = false;
        }
        if (now != up) {
            LOG.infof("pipeline replica %d %s: %s", index, now ? "is up" : "is down", addresses);
        }
        up = now;
    }

    private Pipeline pipeline() {
        if (shared != null) {
            return shared.get();
        }
        Pipeline current = own;
        if (current == null) {
            List<Shard> shards = addresses.stream().map(a -> (Shard) ShardClient.create(a, INFO_TIMEOUT, transport)).toList();
            try {
                current = Pipeline.open(shards, stepTimeout);
            } catch (ShardException e) {
                throw new GatewayException(GatewayException.Kind.UNAVAILABLE,
                        "pipeline replica " + index + " " + addresses + " is not connected: " + e.getMessage());
            } catch (PipelineLayoutException e) {
                LOG.errorf("pipeline replica %d %s does not form one model: %s", index, addresses, e.getMessage());
                throw new GatewayException(GatewayException.Kind.UNAVAILABLE, e.getMessage());
            }
            own = current;
        }
        return current;
    }

    @Override
    public void close() {
        engine.close();
        Pipeline current = own;
        if (current != null) {
            current.close();
        }
    }
}
