package qwen.gateway.routing;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.time.Duration;

/**
 * Several pipeline replicas: {@code qwen.gateway.routing.*}. With {@code replicas} N > 1 every
 * address in {@code qwen.gateway.shards} holds the placeholder {@code {replica}}, which becomes
 * 0 .. N-1 to name the shards of each replica (for StatefulSets, {@code qwen-shard-0-{replica}.qwen-shard-0:9100}).
 */
@ConfigMapping(prefix = "qwen.gateway.routing")
public interface RoutingConfig {

    /** The placeholder in shard addresses that names the replica. */
    String PLACEHOLDER = "{replica}";

    /** Pipeline replicas the gateway spreads sessions over. */
    @WithDefault("1")
    int replicas();

    /** How often every replica's shards are asked whether they serve; a replica that fails is routed around. */
    @WithDefault("1s")
    Duration probeInterval();
}
