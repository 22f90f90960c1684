package qwen.service.backend.cpu;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.locks.LockSupport;

/**
 * A fixed set of worker threads for one parallel loop at a time, built for the ~170 short
 * matmuls of a decode step: a call publishes a small job through a volatile field and costs a
 * few cache-line transfers, not a task submission. The calling thread takes part as worker 0,
 * so {@code threads - 1} threads are started.
 *
 * <p>A call returns when every chunk of its loop has run, not when every worker has looked at
 * it: on shared or oversubscribed cores a worker that the OS has descheduled simply finds no
 * work left when it wakes, instead of holding up the caller.
 *
 * <p>Idle workers spin for {@link #SPIN_NS} after their last job (a decode step's kernels follow
 * each other within microseconds, and waking a parked thread costs tens of microseconds), then
 * park until the next call. Past {@link #BUSY_SPIN_NS} the spinning yields the core to any other
 * runnable thread. Calls must not overlap: one {@link VectorKernels} serves one forward
 * pass at a time.
 */
final class WorkerPool implements AutoCloseable {

    /** A loop body over the index range [from, to); {@code worker} is in [0, threads). */
    @FunctionalInterface
    interface Body {
        void run(int worker, int from, int to);
    }

    /**
     * How long an idle worker spins before it parks: longer than the single-threaded gaps inside a
     * step (norms, rotary, sampling: tens of microseconds), shorter than the time between the steps
     * of a shard in a pipeline, when the other shards compute on the same cores and a spinning
     * worker would only take CPU from them.
     */
    static final long SPIN_NS = TimeUnit.MICROSECONDS.toNanos(200);
    /**
     * How long a waiting thread busy-spins before it spins with {@link Thread#yield} instead, so
     * that on oversubscribed cores it hands its core to a thread with work (often a worker of
     * this same pool) rather than burning the time slice.
     */
    static final long BUSY_SPIN_NS = TimeUnit.MICROSECONDS.toNanos(20);

    private final Thread[] workers;
    // 1 while worker i + 1 is parked or about to park; pairs with the volatile write of job.
    private final AtomicIntegerArray parked;
    private volatile Job job;
    private volatile boolean closed;

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
     * chunk on whichever thread claims it first, and returns when all are done. A failure in any
     * chunk is rethrown here (as the cause of an IllegalStateException) after all have finished.
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
        Job j = new Job(body, n, chunk);
        job = j;
        for (int i = 0; i < workers.length; i++) {
            if (parked.get(i) != 0) {
                LockSupport.unpark(workers[i]);
            }
        }
        j.work(0);
        long waitSince = System.nanoTime();
        while (j.done.get() < j.chunks) {
            if (System.nanoTime() - waitSince < BUSY_SPIN_NS) {
                Thread.onSpinWait();
            } else {
                Thread.yield();
            }
        }
        if (j.failure != null) {
            throw new IllegalStateException("kernel worker failed", j.failure);
        }
    }

    private void workLoop(int worker) {
        Job seen = null;
        long idleSince = System.nanoTime();
        while (!closed) {
            Job j = job;
            if (j != seen) {
                seen = j;
                j.work(worker);
                idleSince = System.nanoTime();
            } else if (System.nanoTime() - idleSince < BUSY_SPIN_NS) {
                Thread.onSpinWait();
            } else if (System.nanoTime() - idleSince < SPIN_NS) {
                Thread.yield();
            } else {
                // Announce, then re-check: the caller writes job before it reads parked.
                parked.set(worker - 1, 1);
                if (job == seen && !closed) {
                    LockSupport.park(this);
                }
                parked.set(worker - 1, 0);
            }
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

    /** One call's loop: chunks are claimed from {@code next} and counted in {@code done}. */
    private static final class Job {
        final Body body;
        final int n;
        final int size;
        final int chunks;
        final AtomicInteger next = new AtomicInteger();
        final AtomicInteger done = new AtomicInteger();
        volatile Throwable failure;

        Job(Body body, int n, int size) {
            this.body = body;
            this.n = n;
            this.size = size;
            this.chunks = (int) (((long) n + size - 1) / size);
        }

        void work(int worker) {
            for (int c = next.getAndIncrement(); c < chunks; c = next.getAndIncrement()) {
                int from = c * size;
                try {
                    body.run(worker, from, Math.min(n, from + size));
                } catch (Throwable t) {
                    failure = t;
                } finally {
                    done.incrementAndGet();
                }
            }
        }
    }
}
