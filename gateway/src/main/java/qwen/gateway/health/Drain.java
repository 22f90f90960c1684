package qwen.gateway.health;

import io.quarkus.runtime.ShutdownDelayInitiatedEvent;
import io.quarkus.runtime.ShutdownEvent;
import jakarta.annotation.Priority;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;
import jakarta.inject.Singleton;
import java.time.Duration;
import java.util.function.IntSupplier;
import org.jboss.logging.Logger;
import qwen.gateway.metrics.GenerationMetrics;

/**
 * Graceful stop: once shutdown begins, readiness goes DOWN (so Kubernetes stops sending new
 * requests) and the shutdown waits until the generations in flight have ended, for up to
 * {@code qwen.gateway.drain.timeout}.
 *
 * <p>The wait runs in Quarkus' pre-shutdown phase ({@link ShutdownDelayInitiatedEvent}, fired
 * synchronously before the shutdown delay and before the HTTP and gRPC servers stop), so streams
 * keep flowing to their clients while they drain. A second wait at the first ShutdownEvent
 * observer (priority 1) keeps the pipeline open for whatever is still running then.
 */
@Singleton
public class Drain {

    private static final Logger LOG = Logger.getLogger(Drain.class);
    private static final long POLL_MILLIS = 50;

    private final IntSupplier inFlight;
    private final Duration timeout;
    private volatile boolean draining;

    @Inject
    Drain(GenerationMetrics metrics, DrainConfig config) {
        this(metrics::inFlight, config.timeout());
    }

    /** For tests: {@code inFlight} counts the generations still running. */
    public Drain(IntSupplier inFlight, Duration timeout) {
        this.inFlight = inFlight;
        this.timeout = timeout;
    }

    /** Whether a drain has begun (readiness is DOWN from then on). */
    public boolean draining() {
        return draining;
    }

    /** Pre-shutdown: the servers still serve; wait here for the streams in flight. */
    void onDelay(@Observes ShutdownDelayInitiatedEvent event) {
        drain();
    }

    void onStop(@Observes @Priority(1) ShutdownEvent event) {
        drain();
    }

    /**
     * Marks the gateway draining and waits until no generation is in flight or the timeout passed.
     *
     * @return whether everything in flight ended in time
     */
    public boolean drain() {
        draining = true;
        long deadline = System.nanoTime() + timeout.toNanos();
        int left = inFlight.getAsInt();
        if (left > 0) {
            LOG.infof("draining: waiting up to %s for %d generation(s) in flight", timeout, left);
        }
        while ((left = inFlight.getAsInt()) > 0 && System.nanoTime() < deadline) {
            try {
                Thread.sleep(POLL_MILLIS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
        if (left > 0) {
            LOG.warnf("drain timed out after %s with %d generation(s) still in flight; they will fail", timeout, left);
            return false;
        }
        return true;
    }
}
