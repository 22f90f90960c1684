package qwen.gateway.openai;

import io.quarkus.test.junit.QuarkusTestProfile;
import java.util.List;
import java.util.Map;

/**
 * The gateway as the OpenAI tests run it: one real shard process with the random TINY demo model
 * ({@link OpenAiShardResource}), sessions in a temporary directory, and random free ports so that
 * parallel builds on one machine do not collide. Test classes with this profile share one start.
 */
public final class OpenAiTestProfile implements QuarkusTestProfile {

    @Override
    public Map<String, String> getConfigOverrides() {
        return Map.of(
                "quarkus.http.test-port", "0",
                "quarkus.grpc.server.test-port", "0");
    }

    @Override
    public List<TestResourceEntry> testResources() {
        return List.of(new TestResourceEntry(OpenAiShardResource.class));
    }
}
