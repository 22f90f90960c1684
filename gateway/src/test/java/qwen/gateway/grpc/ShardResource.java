package qwen.gateway.grpc;

import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Map;
import java.util.stream.Stream;
import qwen.gateway.testing.ShardProcess;

/**
 * One real shard process (TINY demo model, all layers) for the gateway under test, a fresh
 * session directory, and a free loopback port for the gateway's gRPC server.
 */
public final class ShardResource implements QuarkusTestResourceLifecycleManager {

    private ShardProcess shard;
    private Path sessions;

    @Override
    public Map<String, String> start() {
        shard = ShardProcess.start("0-1");
        try {
            sessions = Files.createTempDirectory("qwen-sessions-");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return Map.of(
                "qwen.gateway.shards", shard.address(),
                "qwen.gateway.sessions.dir", sessions.toString(),
                "quarkus.grpc.server.host", "127.0.0.1",
                "quarkus.grpc.server.test-port", Integer.toString(freePort()));
    }

    @Override
    public void stop() {
        if (shard != null) {
            shard.close();
        }
        if (sessions != null) {
            try (Stream<Path> paths = Files.walk(sessions)) {
                paths.sorted(Comparator.reverseOrder()).forEach(path -> path.toFile().delete());
            } catch (IOException e) {
                // A leftover temporary directory is harmless.
            }
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
