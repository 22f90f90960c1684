package qwen.service.grpc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import io.quarkus.runtime.ShutdownEvent;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.junit.jupiter.api.Test;

/**
 * Readiness follows the serving phase: DOWN before the weights are loaded and warmed up, and DOWN
 * again once shutdown begins. (The warm-up itself runs in ShardRuntime.start; every Quarkus test
 * of this module goes through it.)
 */
class ShardReadinessTest {

    @Test
    void downWhileLoadingAndOnceStopping() {
        ShardRuntime runtime = new ShardRuntime(null, null);
        ShardReadinessCheck check = new ShardReadinessCheck(runtime);
        HealthCheckResponse loading = check.call();
        assertEquals(HealthCheckResponse.Status.DOWN, loading.getStatus());
        assertEquals("LOADING", loading.getData().orElseThrow().get("phase"));
        assertFalse(runtime.phase() == ServingPhase.SERVING);

        runtime.stop(new ShutdownEvent());
        HealthCheckResponse stopping = check.call();
        assertEquals(HealthCheckResponse.Status.DOWN, stopping.getStatus());
        assertEquals("STOPPING", stopping.getData().orElseThrow().get("phase"));
    }
}
