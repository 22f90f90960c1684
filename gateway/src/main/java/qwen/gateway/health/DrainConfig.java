package qwen.gateway.health;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.time.Duration;

/** How the gateway stops: {@code qwen.gateway.drain.*}. */
@ConfigMapping(prefix = "qwen.gateway.drain")
public interface DrainConfig {

    /**
     * On shutdown, how long the gateway waits for the generations in flight to end before it
     * closes the pipeline (they then fail with UNAVAILABLE). Readiness is DOWN meanwhile. Keep it
     * below the pod's terminationGracePeriodSeconds.
     */
    @WithDefault("30s")
    Duration timeout();
}
