package qwen.gateway.openai;

import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;
import java.util.Map;
import qwen.gateway.testing.ShardProcess;
import qwen.gateway.testing.TemporaryDirectory;

/**
 * One real shard process (the TINY random demo model, all layers) for the gateway under test, and
 * a temporary session directory. Needs the service built:
 * {@code ./mvnw -q -o -pl proto,service install -DskipTests}.
 */
public final class OpenAiShardResource implements QuarkusTestResourceLifecycleManager {

    private ShardProcess shard;
    private TemporaryDirectory sessions;

    @Override
    public Map<String, String> start() {
        shard = ShardProcess.start("0-1");
        sessions = TemporaryDirectory.create("qwen-openai-sessions-");
        return Map.of(
                "qwen.gateway.shards", shard.address(),
                "qwen.gateway.sessions.dir", sessions.path().toString());
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
}
