package qwen.gateway.grpc;

import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.util.Map;
import qwen.gateway.testing.ShardProcess;
import qwen.gateway.testing.TemporaryDirectory;

/**
 * One real shard process (TINY demo model, all layers) for the gateway under test, a fresh
 * session directory, and a free loopback port for the gateway's gRPC server.
 *
 * <p>Init arguments: {@code shard.<key>} becomes {@code -D<key>} of the shard process, any other
 * key is gateway configuration. {@link #shard()} is the running shard, for tests that kill it.
 */
public final class ShardResource implements QuarkusTestResourceLifecycleManager {

    private static volatile ShardProcess current;

    private ShardProcess shard;
    private TemporaryDirectory sessions;
    private final Map<String, String> shardProperties = new java.util.HashMap<>();
    private final Map<String, String> gatewayProperties = new java.util.HashMap<>();

    /** The shard of the test class running now. */
    static ShardProcess shard() {
        return current;
    }

    @Override
    public void init(Map<String, String> initArgs) {
        initArgs.forEach((key, value) -> {
            if (key.startsWith("shard.")) {
                shardProperties.put(key.substring("shard.".length()), value);
            } else {
                gatewayProperties.put(key, value);
            }
        });
    }

    @Override
    public Map<String, String> start() {
        shard = ShardProcess.start("0-1", shardProperties, ShardProcess.DEFAULT_START_TIMEOUT);
        current = shard;
        sessions = TemporaryDirectory.create("qwen-sessions-");
        Map<String, String> config = new java.util.HashMap<>(gatewayProperties);
        config.putAll(Map.of(
                "qwen.gateway.shards", shard.address(),
                "qwen.gateway.sessions.dir", sessions.path().toString(),
                "quarkus.grpc.server.host", "127.0.0.1",
                "quarkus.grpc.server.test-port", Integer.toString(freePort())));
        return config;
    }

    @Override
    public void stop() {
        if (shard != null) {
            shard.close();
        }
        if (sessions != null) {
            sessions.close();
        }
    }

    private static int freePort() {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
