package qwen.gateway.health;

import jakarta.enterprise.context.ApplicationScoped;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.Readiness;

/** DOWN once the gateway drains for shutdown, so no new request is routed to it (/q/health/ready). */
@Readiness
@ApplicationScoped
public class DrainReadiness implements HealthCheck {

    private final Drain drain;

    DrainReadiness(Drain drain) {
        this.drain = drain;
    }

    @Override
    public HealthCheckResponse call() {
        return HealthCheckResponse.named("drain").status(!drain.draining()).build();
    }
}
