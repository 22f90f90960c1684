package qwen.gateway.health;

import jakarta.enterprise.context.ApplicationScoped;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.Liveness;
import org.eclipse.microprofile.health.Readiness;
import qwen.gateway.tokenizer.QwenTokenizer;

/**
 * The gateway's own model state: the tokenizer is loaded (it is made at start-up, so a gateway
 * that answers at all has it). Liveness carries only this; the shards' reachability is readiness
 * ({@code qwen.gateway.shard.ShardsReadiness}), so that a shard outage never restarts gateways.
 */
@Liveness
@Readiness
@ApplicationScoped
public class TokenizerLiveness implements HealthCheck {

    private final QwenTokenizer tokenizer;

    TokenizerLiveness(QwenTokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    @Override
    public HealthCheckResponse call() {
        int vocabulary = tokenizer.vocabularySize();
        return HealthCheckResponse.named("tokenizer").status(vocabulary > 0).withData("vocabulary", vocabulary).build();
    }
}
