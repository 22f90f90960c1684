package qwen.gateway.testing;

import java.time.Duration;
import java.util.function.BooleanSupplier;

/** Waiting in tests for something another thread brings about (a probe, a freed KV, a row gone). */
public final class Await {

    private Await() {
    }

    /** Returns once {@code condition} holds, asking every 10 ms; fails naming {@code what} after {@code within}. */
    public static void until(BooleanSupplier condition, Duration within, String what) {
        long deadline = System.nanoTime() + within.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out after " + within + " waiting for: " + what);
            }
            try {
                Thread.sleep(10);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError("interrupted waiting for: " + what, e);
            }
        }
    }
}
