package qwen.gateway.routing;

import java.time.Duration;
import java.util.List;
import java.util.function.Supplier;
import org.jboss.logging.Logger;
import qwen.gateway.chat.GatewayException;
import qwen.gateway.shard.Pipeline;
import qwen.gateway.shard.PipelineLayoutException;
import qwen.gateway.shard.Shard;
import qwen.gateway.shard.ShardClient;
import qwen.gateway.shard.ShardException;
import qwen.gateway.shard.ShardTransport;

/**
 * Where one pipeline replica comes from.
 *
 * @param addresses its shards' addresses, for logs and readiness
 * @param connect the replica's pipeline; throws {@link qwen.gateway.chat.GatewayException} (UNAVAILABLE)
 *     while its shards cannot be reached, and is asked again at the next probe
 * @param owned whether the router closes the pipeline (false for one someone else connected and closes)
 */
public record ReplicaSource(List<String> addresses, Supplier<Pipeline> connect, boolean owned) {

    private static final Logger LOG = Logger.getLogger(ReplicaSource.class);
    private static final Duration INFO_TIMEOUT = Duration.ofSeconds(5);

    public ReplicaSource {
        addresses = List.copyOf(addresses);
    }

    /** A replica whose pipeline someone else connects and closes (replica 0: the gateway's own). */
    public static ReplicaSource shared(List<String> addresses, Supplier<Pipeline> pipeline) {
        return new ReplicaSource(addresses, pipeline, false);
    }

    /** A replica the router connects itself to {@code addresses} (gRPC shard clients), and closes. */
    public static ReplicaSource shards(int index, List<String> addresses, Duration stepTimeout, int microBatches,
                                       ShardTransport transport) {
        return new ReplicaSource(addresses, () -> {
            List<Shard> shards = addresses.stream().map(a -> (Shard) ShardClient.create(a, INFO_TIMEOUT, transport)).toList();
            try {
                return Pipeline.open(shards, stepTimeout, microBatches);
            } catch (ShardException e) {
                throw new GatewayException(GatewayException.Kind.UNAVAILABLE,
                        "pipeline replica " + index + " " + addresses + " is not connected: " + e.getMessage());
            } catch (PipelineLayoutException e) {
                LOG.errorf("pipeline replica %d %s does not form one model: %s", index, addresses, e.getMessage());
                throw new GatewayException(GatewayException.Kind.UNAVAILABLE, e.getMessage());
            }
        }, true);
    }
}
