package qwen.gateway.health;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Readiness is DOWN through a drain, which waits for the generations in flight, within its timeout. */
@Timeout(30)
class DrainTest {

    @Test
    void readinessGoesDownAndTheDrainWaitsForTheLastGeneration() throws Exception {
        AtomicInteger inFlight = new AtomicInteger(2);
        Drain drain = new Drain(inFlight::get, Duration.ofSeconds(20));
        DrainReadiness readiness = new DrainReadiness(drain);
        assertEquals(HealthCheckResponse.Status.UP, readiness.call().getStatus());

        CompletableFuture<Boolean> done = CompletableFuture.supplyAsync(drain::drain);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (!drain.draining() && System.nanoTime() < deadline) {
            Thread.onSpinWait();
        }
        assertEquals(HealthCheckResponse.Status.DOWN, readiness.call().getStatus(), "DOWN as soon as the drain begins");
        inFlight.set(1);
        Thread.sleep(200);
        assertFalse(done.isDone(), "one generation is still in flight");
        assertEquals(HealthCheckResponse.Status.DOWN, readiness.call().getStatus());
        inFlight.set(0);
        assertTrue(done.get(5, TimeUnit.SECONDS), "drained in time");
        assertEquals(HealthCheckResponse.Status.DOWN, readiness.call().getStatus(), "stays DOWN until the process ends");
    }

    @Test
    void aDrainGivesUpAfterItsTimeout() {
        Drain drain = new Drain(() -> 1, Duration.ofMillis(300));
        long t0 = System.nanoTime();
        assertFalse(drain.drain());
        long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        assertTrue(millis >= 300 && millis < 5000, "gave up after " + millis + " ms");
    }
}
