package qwen.gateway.routing;

import java.util.List;
import java.util.Optional;
import org.jboss.logging.Logger;
import qwen.gateway.chat.ChatEngine;
import qwen.gateway.chat.GatewayException;
import qwen.gateway.shard.Pipeline;
import qwen.gateway.shard.ReplicaState;
import qwen.gateway.shard.ShardException;

/**
 * One pipeline replica as the router sees it: its engine, and whether all its shards answered the
 * last probe. Its pipeline comes from its {@link ReplicaSource}; the probe (on the router's probe
 * thread) keeps asking for it until it connects, then asks every shard's Info.
 */
final class Replica implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(Replica.class);

    private final int index;
    private final ReplicaSource source;
    private final ChatEngine engine;
    private volatile Pipeline pipeline;
    private volatile boolean up;
    private volatile String problem = "not probed yet";

    Replica(int index, ReplicaSource source, ReplicaRouter.EngineFactory engines) {
        this.index = index;
        this.source = source;
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

    ReplicaState state() {
        return new ReplicaState(index, source.addresses(), up, up ? "" : problem);
    }

    /** The pipeline if it connected, without trying to connect. */
    Optional<Pipeline> connected() {
        return Optional.ofNullable(pipeline);
    }

    /** Connects if needed and asks every shard whether it serves; updates {@link #up()}. */
    void probe() {
        boolean now;
        String why;
        try {
            List<String> down = pipeline().unreachableShards();
            now = down.isEmpty();
            why = "shard(s) not answering: " + String.join("; ", down);
        } catch (GatewayException | ShardException e) {
            now = false;
            why = e.getMessage();
        }
        if (now != up) {
            LOG.infof("pipeline replica %d %s: %s", index, now ? "is up" : "is down (" + why + ")", source.addresses());
        }
        problem = why;
        up = now;
    }

    private Pipeline pipeline() {
        Pipeline current = pipeline;
        if (current == null) {
            current = source.connect().get();
            pipeline = current;
        }
        return current;
    }

    @Override
    public void close() {
        engine.close();
        Pipeline current = pipeline;
        if (current != null && source.owned()) {
            current.close();
        }
    }
}
