package qwen.gateway.shard;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.Readiness;

/**
 * Ready while the shard pipeline is connected and every shard answers (/q/health/ready); when not,
 * the check's data says why.
 */
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
        boolean serving = pipelines.serving();
        var response = HealthCheckResponse.named("shard-pipeline").status(serving);
        if (!serving) {
            response.withData("problem", pipelines.problem());
        }
        return response.build();
    }
}
