package qwen.gateway.routing;

import java.util.List;

/** The shard addresses of one pipeline replica, from the configured ones. */
public final class ReplicaAddresses {

    private ReplicaAddresses() {
    }

    /**
     * {@code addresses} with {@link RoutingConfig#PLACEHOLDER} replaced by {@code replica}; addresses
     * without it are the same for every replica (one replica).
     */
    public static List<String> of(List<String> addresses, int replica) {
        return addresses.stream().map(a -> a.strip().replace(RoutingConfig.PLACEHOLDER, Integer.toString(replica))).toList();
    }

    /**
     * Checks that {@code replicas} and the addresses agree.
     *
     * @throws IllegalStateException naming the keys
     */
    public static void check(List<String> addresses, int replicas) {
        if (replicas < 1) {
            throw new IllegalStateException("qwen.gateway.routing.replicas must be >= 1, got " + replicas);
        }
        boolean templated = addresses.stream().allMatch(a -> a.contains(RoutingConfig.PLACEHOLDER));
        if (replicas > 1 && !templated) {
            throw new IllegalStateException("qwen.gateway.routing.replicas=" + replicas + " needs every address in "
                    + "qwen.gateway.shards to hold " + RoutingConfig.PLACEHOLDER + ", got " + addresses);
        }
    }
}
