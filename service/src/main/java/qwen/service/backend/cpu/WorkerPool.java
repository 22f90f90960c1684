package qwen.service.backend.cpu;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.locks.LockSupport;

/**
 * A fixed set of worker threads for one parallel loop at a time, built for the ~170 short
 * matmuls of a decode step: a call costs a volatile write and a few cache-line transfers, not a
 * task submission. The calling thread takes part as worker 0, so {@code threads - 1} threads are
 * started.
 *
 * <p>Idle workers spin for {@link #SPIN_NS} after their last job (a decode step's kernels follow
 * each other within microseconds, and waking a parked thread costs tens of microseconds), then
 * park until the next call. Calls must not overlap: one {@link VectorKernels} serves one forward
 * pass at a time.
 */
final class WorkerPool implements AutoCloseable {

    /** A loop body over the index range [from, to); {@code worker} is in [0, threads). */
    @FunctionalInterface
    interface Body {
        void run(int worker, int from, int to);
    }

    /** How long an idle worker spins before it parks. */
    static final long SPIN_NS = TimeUnit.MILLISECONDS.toNanos(1);

    private final Thread[] workers;
    // 1 while worker i + 1 is parked or about to park; volatile accesses pair with epoch.
    private final AtomicIntegerArray parked;
    private final AtomicInteger nextChunk = new AtomicInteger();
    private final AtomicInteger running = new AtomicInteger();
    private volatile long epoch;
    private volatile boolean closed;
    private volatile Throwable failure;
    // The current job, published by the volatile write of epoch.
    private Body body;
    private int n;
    private int chunk;

    WorkerPool(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
        workers = new Thread[threads - 1];
        parked = new AtomicIntegerArray(threads - 1);
        for (int i = 0; i < workers.length; i++) {
            int worker = i + 1;
            workers[i] = Thread.ofPlatform().daemon().name("qwen-kernels-" + worker)
                    .unstarted(() -> workLoop(worker));
            workers[i].start();
        }
    }

    int threads() {
        return workers.length + 1;
    }

    /**
     * Runs body over [0, n) in chunks of {@code chunk} indices (the last may be shorter), each
     * chunk on whichever thread claims it first, and returns when all are done. Pass
     * chunk = ceil(n / threads) for one contiguous range per thread.
     */
    void forEachChunk(int n, int chunk, Body body) {
        if (n <= 0) {
            return;
        }
        if (closed) {
            throw new IllegalStateException("kernel worker pool is closed");
        }
        if (workers.length == 0 || n <= chunk) {
            body.run(0, 0, n);
            return;
        }
        this.body = body;
        this.n = n;
        this.chunk = chunk;
        nextChunk.set(0);
        running.set(workers.length);
        epoch++;
        for (int i = 0; i < workers.length; i++) {
            if (parked.get(i) != 0) {
                LockSupport.unpark(workers[i]);
            }
        }
        Throwable own = null;
        try {
            claimChunks(0);
        } catch (Throwable t) {
            own = t;
        }
        while (running.get() != 0) {
            Thread.onSpinWait();
        }
        this.body = null;
        Throwable theirs = failure;
        failure = null;
        if (own != null || theirs != null) {
            throw new IllegalStateException("kernel worker failed", own != null ? own : theirs);
        }
    }

    private void claimChunks(int worker) {
        Body b = body;
        int size = chunk;
        int total = n;
        for (int c = nextChunk.getAndIncrement(); (long) c * size < total; c = nextChunk.getAndIncrement()) {
            int from = c * size;
            b.run(worker, from, Math.min(total, from + size));
        }
    }

    private void workLoop(int worker) {
        long seen = 0;
        while (true) {
            long idleSince = System.nanoTime();
            while (epoch == seen) {
                if (closed) {
                    return;
                }
                if (System.nanoTime() - idleSince < SPIN_NS) {
                    Thread.onSpinWait();
                } else {
                    // Announce, then re-check: the caller writes epoch before reading parked.
                    parked.set(worker - 1, 1);
                    if (epoch == seen && !closed) {
                        LockSupport.park(this);
                    }
                    parked.set(worker - 1, 0);
                }
            }
            seen = epoch;
            try {
                claimChunks(worker);
            } catch (Throwable t) {
                failure = t;
            }
            running.decrementAndGet();
        }
    }

    /** Stops and joins the workers; later calls fail. */
    @Override
    public void close() {
        closed = true;
        for (Thread w : workers) {
            LockSupport.unpark(w);
        }
        for (Thread w : workers) {
            try {
                w.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }
}
