package qwen.gateway.shard;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.Readiness;

/** Ready once the shard pipeline is connected (/q/health/ready). */
@Readiness
@ApplicationScoped
public class ShardsReadiness implements HealthCheck {

    private final PipelineService pipelines;

    @Inject
    public ShardsReadiness(PipelineService pipelines) {
        this.pipelines = pipelines;
    }

    @Override
    public HealthCheckResponse call() {
        return HealthCheckResponse.named("shard-pipeline").status(pipelines.connected()).build();
    }
}
