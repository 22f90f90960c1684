package qwen.gateway.routing;

import io.smallrye.mutiny.Multi;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;
import org.jboss.logging.Logger;
import qwen.gateway.chat.ChatEngine;
import qwen.gateway.chat.GatewayException;
import qwen.gateway.chat.GenerationEvent;
import qwen.gateway.chat.GenerationRequest;
import qwen.gateway.chat.Generations;
import qwen.gateway.shard.Pipeline;
import qwen.gateway.shard.ShardTransport;

/**
 * Generations over several pipeline replicas. A sequence (a session) goes to the replica that
 * {@link HashRing consistent hashing} of its id picks among the replicas whose shards all answered
 * the last probe, so its turns land where its KV is. When that replica is down the session's next
 * turn goes to the next replica on the ring, which holds none of its KV and prefills the history
 * the prompt carries (the session store is the source of truth); when the replica is back the
 * session returns to it. Probes run on one thread every {@code probeInterval}.
 */
public final class ReplicaRouter implements Generations, AutoCloseable {

    private static final Logger LOG = Logger.getLogger(ReplicaRouter.class);

    /** Makes a replica's engine over its pipeline. */
    public interface EngineFactory {
        ChatEngine create(Supplier<Pipeline> pipeline);
    }

    private final List<Replica> replicas;
    private final HashRing ring;
    private final Duration probeInterval;
    private final Thread prober;
    private volatile boolean closed;

    /**
     * @param addresses the shard addresses of each replica, replica 0 first
     * @param first replica 0's pipeline (the gateway's own, connected elsewhere)
     * @param transport how the other replicas' shards are reached
     */
    public ReplicaRouter(List<List<String>> addresses, Supplier<Pipeline> first, Duration stepTimeout,
                         ShardTransport transport, Duration probeInterval, EngineFactory engines) {
        int count = addresses.size();
        List<Replica> made = new ArrayList<>();
        made.add(new Replica(0, addresses.getFirst(), first, engines));
        for (int r = 1; r < count; r++) {
            made.add(new Replica(r, addresses.get(r), stepTimeout, transport, engines));
        }
        this.replicas = List.copyOf(made);
        this.ring = new HashRing(count);
        this.probeInterval = probeInterval;
        probeAll();
        this.prober = Thread.ofPlatform().name("qwen-replica-probe").daemon().start(this::probeLoop);
        LOG.infof("routing sessions over %d pipeline replicas", count);
    }

    @Override
    public Multi<GenerationEvent> generate(GenerationRequest request) {
        return Multi.createFrom().deferred(() -> {
            int r = route(request.sequenceId());
            if (r < 0) {
                return Multi.createFrom().failure(new GatewayException(GatewayException.Kind.UNAVAILABLE,
                        "no pipeline replica is serving; retry shortly"));
            }
            return replicas.get(r).engine().generate(request);
        });
    }

    @Override
    public boolean cancel(String requestId) {
        boolean any = false;
        for (Replica replica : replicas) {
            any |= replica.engine().cancel(requestId);
        }
        return any;
    }

    @Override
    public void release(String sequenceId) {
        replicas.forEach(replica -> replica.engine().release(sequenceId));
    }

    /** The replica a sequence goes to now, or -1 when none is up. */
    public int route(String sequenceId) {
        return ring.route(sequenceId, r -> replicas.get(r).up());
    }

    /** Whether replica {@code r} answered the last probe. */
    public boolean up(int r) {
        return replicas.get(r).up();
    }

    /** Sequences running on all replicas. */
    public int runningSequences() {
        return replicas.stream().mapToInt(r -> r.engine().runningSequences()).sum();
    }

    /** Requests waiting on all replicas. */
    public int queuedRequests() {
        return replicas.stream().mapToInt(r -> r.engine().queuedRequests()).sum();
    }

    @Override
    public void close() {
        closed = true;
        prober.interrupt();
        replicas.forEach(Replica::close);
    }

    private void probeAll() {
        for (Replica replica : replicas) {
            try {
                replica.probe();
            } catch (RuntimeException e) {
                LOG.warnf("probing pipeline replica %d failed: %s", replica.index(), e.toString());
            }
        }
    }

    private void probeLoop() {
        while (!closed) {
            try {
                Thread.sleep(probeInterval.toMillis());
            } catch (InterruptedException e) {
                return;
            }
            probeAll();
        }
    }
}
