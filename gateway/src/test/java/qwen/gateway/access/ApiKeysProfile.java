package qwen.gateway.access;

import io.quarkus.test.junit.QuarkusTestProfile;
import java.util.List;
import java.util.Map;
import qwen.gateway.grpc.ShardResource;

/** The gateway with two accepted API keys and a cap of one generation per key, over one real shard. */
public final class ApiKeysProfile implements QuarkusTestProfile {

    static final String KEY = "sk-test-3f9a1c";
    static final String OTHER_KEY = "sk-test-other-77";

    @Override
    public Map<String, String> getConfigOverrides() {
        return Map.of(
                "qwen.gateway.access.keys", KEY + "," + OTHER_KEY,
                "qwen.gateway.access.max-concurrent-per-key", "1",
                "quarkus.http.test-port", "0");
    }

    @Override
    public List<TestResourceEntry> testResources() {
        return List.of(new TestResourceEntry(ShardResource.class));
    }
}
