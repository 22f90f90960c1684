package qwen.gateway.openai;

import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Map;
import java.util.stream.Stream;
import qwen.gateway.testing.ShardProcess;

/**
 * One real shard process (the TINY random demo model, all layers) for the gateway under test, and
 * a temporary session directory. Needs the service built:
 * {@code ./mvnw -q -o -pl proto,service install -DskipTests}.
 */
public final class OpenAiShardResource implements QuarkusTestResourceLifecycleManager {

    private ShardProcess shard;
    private Path sessions;

    @Override
    public Map<String, String> start() {
        shard = ShardProcess.start("0-1");
        try {
            sessions = Files.createTempDirectory("qwen-openai-sessions-");
        } catch (IOException e) {
            shard.close();
            throw new UncheckedIOException(e);
        }
        return Map.of(
                "qwen.gateway.shards", shard.address(),
                "qwen.gateway.sessions.dir", sessions.toString());
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
}
