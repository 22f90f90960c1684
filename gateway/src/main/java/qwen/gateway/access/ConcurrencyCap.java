package qwen.gateway.access;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/** At most {@code limit} generations at once per key; {@code limit} 0 means no cap. */
public final class ConcurrencyCap {

    /** A held slot; closing it (any number of times) gives the slot back once. */
    public interface Permit extends AutoCloseable {
        @Override
        void close();
    }

    private static final Permit NONE = () -> {
    };

    private final int limit;
    private final ConcurrentHashMap<String, AtomicInteger> running = new ConcurrentHashMap<>();

    public ConcurrencyCap(int limit) {
        if (limit < 0) {
            throw new IllegalArgumentException("qwen.gateway.access.max-concurrent-per-key must be >= 1, got " + limit);
        }
        this.limit = limit;
    }

    public int limit() {
        return limit;
    }

    /** A slot for {@code caller}, or null when it already has {@code limit} running. */
    public Permit tryAcquire(ApiKeys.Caller caller) {
        if (limit == 0 || caller == null) {
            return NONE;
        }
        AtomicInteger count = running.computeIfAbsent(caller.fingerprint(), k -> new AtomicInteger());
        if (count.incrementAndGet() > limit) {
            count.decrementAndGet();
            return null;
        }
        AtomicBoolean released = new AtomicBoolean();
        return () -> {
            if (released.compareAndSet(false, true)) {
                count.decrementAndGet();
            }
        };
    }

    /** Generations {@code caller} has running now. */
    public int running(ApiKeys.Caller caller) {
        AtomicInteger count = running.get(caller.fingerprint());
        return count == null ? 0 : count.get();
    }
}
