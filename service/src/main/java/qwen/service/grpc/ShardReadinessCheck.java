package qwen.service.grpc;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.Readiness;

/** /q/health/ready on the HTTP port (for Kubernetes probes): UP exactly when gRPC health says SERVING. */
@Readiness
@ApplicationScoped
public class ShardReadinessCheck implements HealthCheck {

    private final ShardRuntime runtime;

    @Inject
    public ShardReadinessCheck(ShardRuntime runtime) {
        this.runtime = runtime;
    }

    @Override
    public HealthCheckResponse call() {
        ServingPhase phase = runtime.phase();
        return HealthCheckResponse.named("qwen-shard")
                .status(phase == ServingPhase.SERVING)
                .withData("phase", phase.name())
                .build();
    }
}
