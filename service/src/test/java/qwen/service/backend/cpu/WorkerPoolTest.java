package qwen.service.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;

/** {@link WorkerPool}: every index exactly once, failures reach the caller, workers wake after parking. */
class WorkerPoolTest {

    @Test
    void everyIndexRunsOnceAcrossManyCalls() {
        try (WorkerPool pool = new WorkerPool(3)) {
            for (int call = 0; call < 2000; call++) {
                int n = 1 + call % 97;
                AtomicIntegerArray seen = new AtomicIntegerArray(n);
                pool.forEachChunk(n, 1 + call % 5, (worker, from, to) -> {
                    for (int i = from; i < to; i++) {
                        seen.incrementAndGet(i);
                    }
                });
                for (int i = 0; i < n; i++) {
                    assertEquals(1, seen.get(i), "call " + call + " index " + i);
                }
            }
        }
    }

    @Test
    void workersWakeAfterParking() throws InterruptedException {
        try (WorkerPool pool = new WorkerPool(2)) {
            for (int round = 0; round < 3; round++) {
                Thread.sleep(WorkerPool.SPIN_NS / 1_000_000 + 20);
                AtomicIntegerArray byWorker = new AtomicIntegerArray(2);
                pool.forEachChunk(2, 1, (worker, from, to) -> {
                    byWorker.incrementAndGet(worker);
                    busy();
                });
                assertEquals(2, byWorker.get(0) + byWorker.get(1));
            }
        }
    }

    @Test
    void aFailureReachesTheCallerAndThePoolStaysUsable() {
        try (WorkerPool pool = new WorkerPool(2)) {
            assertThrows(IllegalStateException.class, () -> pool.forEachChunk(8, 1, (worker, from, to) -> {
                if (from == 5) {
                    throw new ArithmeticException("boom");
                }
            }));
            int[] count = new int[1];
            pool.forEachChunk(4, 4, (worker, from, to) -> count[0] += to - from);
            assertEquals(4, count[0]);
        }
    }

    @Test
    void closedPoolRefusesWork() {
        WorkerPool pool = new WorkerPool(2);
        pool.close();
        assertThrows(IllegalStateException.class, () -> pool.forEachChunk(8, 1, (worker, from, to) -> { }));
    }

    private static void busy() {
        long until = System.nanoTime() + 200_000;
        while (System.nanoTime() < until) {
            Thread.onSpinWait();
        }
    }
}
