package qwen.gateway.routing;

import io.smallrye.mutiny.Multi;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.function.Supplier;
import org.jboss.logging.Logger;
import qwen.gateway.chat.ChatEngine;
import qwen.gateway.chat.GatewayException;
import qwen.gateway.chat.GenerationEvent;
import qwen.gateway.chat.GenerationRequest;
import qwen.gateway.chat.Generations;
import qwen.gateway.shard.Pipeline;
import qwen.gateway.shard.ReplicaState;
import qwen.gateway.shard.ReplicaView;
import qwen.gateway.shard.ShardTransport;

/**
 * Generations over several pipeline replicas. A sequence (a session) goes to the replica that
 * {@link HashRing consistent hashing} of its id picks among the replicas whose shards all answered
 * the last probe, so its turns land where its KV is. When that replica is down the session's next
 * turn goes to the next replica on the ring, which holds none of its KV and prefills the history
 * the prompt carries (the session store is the source of truth); when the replica is back the
 * session returns to it. Probes run on one thread every {@code probeInterval}.
 *
 * <p>As a {@link ReplicaView} it tells readiness every replica's state: the gateway serves while
 * at least one replica is up.
 */
public final class ReplicaRouter implements Generations, ReplicaView, AutoCloseable {

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
        this(sources(addresses, first, stepTimeout, 0, transport), probeInterval, engines);
    }

    /** Routes over {@code sources}, replica 0 first; probes each once before returning. */
    public ReplicaRouter(List<ReplicaSource> sources, Duration probeInterval, EngineFactory engines) {
        List<Replica> made = new ArrayList<>();
        for (int r = 0; r < sources.size(); r++) {
            made.add(new Replica(r, sources.get(r), engines));
        }
        this.replicas = List.copyOf(made);
        this.ring = new HashRing(replicas.size());
        this.probeInterval = probeInterval;
        probeAll();
        this.prober = Thread.ofPlatform().name("qwen-replica-probe").daemon().start(this::probeLoop);
        LOG.infof("routing sessions over %d pipeline replicas", replicas.size());
    }

    /** Replica 0 over {@code first}; the others connected by the router to their addresses. */
    public static List<ReplicaSource> sources(List<List<String>> addresses, Supplier<Pipeline> first,
                                              Duration stepTimeout, int microBatches, ShardTransport transport) {
        List<ReplicaSource> sources = new ArrayList<>();
        sources.add(ReplicaSource.shared(addresses.getFirst(), first));
        for (int r = 1; r < addresses.size(); r++) {
            sources.add(ReplicaSource.shards(r, addresses.get(r), stepTimeout, microBatches, transport));
        }
        return sources;
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

    /** Whether at least one replica is up: the gateway can serve every session (on another replica if need be). */
    public boolean serving() {
        return replicas.stream().anyMatch(Replica::up);
    }

    @Override
    public List<ReplicaState> states() {
        return replicas.stream().map(Replica::state).toList();
    }

    @Override
    public Optional<Pipeline> anyConnected() {
        return replicas.stream().filter(Replica::up).map(Replica::connected).flatMap(Optional::stream).findFirst()
                .or(() -> replicas.stream().map(Replica::connected).flatMap(Optional::stream).findFirst());
    }

    @Override
    public Optional<Pipeline> connected(int index) {
        return replicas.get(index).connected();
    }

    /** Sequences running on all replicas. */
    @Override
    public int runningSequences() {
        return replicas.stream().mapToInt(r -> r.engine().runningSequences()).sum();
    }

    /** Requests waiting on all replicas. */
    @Override
    public int queuedRequests() {
        return replicas.stream().mapToInt(r -> r.engine().queuedRequests()).sum();
    }

    /** Idle kept sequences on all replicas. */
    @Override
    public int idleSequences() {
        return replicas.stream().mapToInt(r -> r.engine().idleSequences()).sum();
    }

    @Override
    public Set<String> idleSequenceIds() {
        Set<String> ids = new HashSet<>();
        replicas.forEach(replica -> ids.addAll(replica.engine().idleSequenceIds()));
        return ids;
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
