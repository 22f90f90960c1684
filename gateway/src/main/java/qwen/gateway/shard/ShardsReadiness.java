package qwen.gateway.shard;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import java.util.List;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.Readiness;

/**
 * Ready while at least one pipeline replica has every shard answering (with one replica: the
 * pipeline is connected and every shard answers), on /q/health/ready. The check's data lists every
 * replica's state ({@code replica-0: up}, {@code replica-1: down: <why>}), and when not ready, why.
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
        return response(pipelines.replicaStates(), pipelines.problem());
    }

    /** The check's answer for these replica states; {@code problem} is shown when none is up. */
    public static HealthCheckResponse response(List<ReplicaState> replicas, String problem) {
        long up = replicas.stream().filter(ReplicaState::up).count();
        var response = HealthCheckResponse.named("shard-pipeline").status(up > 0)
                .withData("replicas-up", up + "/" + replicas.size());
        for (ReplicaState replica : replicas) {
            response.withData("replica-" + replica.index(), replica.describe());
        }
        if (up == 0) {
            response.withData("problem", problem);
        }
        return response.build();
    }
}
