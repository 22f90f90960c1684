package qwen.gateway.session;

import io.smallrye.mutiny.Multi;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.jboss.logging.Logger;
import qwen.gateway.chat.CancelOutcome;
import qwen.gateway.chat.ForwardingGenerations;
import qwen.gateway.chat.GatewayException;
import qwen.gateway.chat.GenerationEvent;
import qwen.gateway.chat.GenerationRequest;
import qwen.gateway.chat.Generations;

/**
 * Generations whose requests can be cancelled from any gateway sharing a PostgreSQL session store.
 * Each request is registered in {@link PostgresRequests} when it starts (a request id running on
 * any of the gateways is refused with ALREADY_EXISTS) and unregistered when it ends. A cancel for
 * a request this gateway does not run marks its row; one thread per gateway polls every
 * {@code pollInterval} for marks on its own requests (only while it runs any), stops them and
 * writes the outcome, which the cancelling gateway waits for. So a cancel takes effect within one
 * poll interval, one round trip and one decode step, wherever it arrives. A session turn whose
 * session was deleted (through any gateway) is found by the same poll and stopped the same way.
 *
 * <p>The same thread renews this gateway's rows every third of {@code ttl} and deletes expired
 * rows of any gateway (one that died mid-request, or an answer nobody read). Every
 * {@link #kvSweepInterval} it also frees the KV of idle sessions that were deleted through another
 * gateway: only the gateway that ran a session's last turn can free its KV, and the deleter cannot
 * tell it to when no turn runs (or when the turn's end overtook the delete in the store).
 */
public final class SharedCancellation extends ForwardingGenerations {

    private static final Logger LOG = Logger.getLogger(SharedCancellation.class);
    /** The shortest time a cancelling gateway waits for the owner's answer. */
    private static final Duration MIN_ANSWER_WAIT = Duration.ofSeconds(2);

    private final PostgresRequests requests;
    private final Duration pollInterval;
    private final Duration ttl;
    private final Duration answerWait;
    private final String owner = UUID.randomUUID().toString();
    private final Set<String> live = ConcurrentHashMap.newKeySet();
    private final ScheduledExecutorService poller = Executors.newSingleThreadScheduledExecutor(
            Thread.ofPlatform().name("qwen-cancel-poll").daemon().factory());
    private final Duration kvSweepInterval;
    private long lastRenewal = System.nanoTime();
    private long lastKvSweep = System.nanoTime();

    SharedCancellation(Generations engine, PostgresRequests requests, Duration pollInterval, Duration ttl) {
        super(engine);
        if (pollInterval.toMillis() < 10) {
            throw new IllegalStateException("qwen.gateway.sessions.cancel-poll-interval must be at least 10ms, got "
                    + pollInterval);
        }
        this.requests = requests;
        this.pollInterval = pollInterval;
        this.ttl = ttl;
        this.kvSweepInterval = kvSweepInterval(pollInterval);
        this.answerWait = pollInterval.multipliedBy(20).compareTo(MIN_ANSWER_WAIT) > 0
                ? pollInterval.multipliedBy(20) : MIN_ANSWER_WAIT;
        poller.scheduleWithFixedDelay(this::poll, pollInterval.toMillis(), pollInterval.toMillis(),
                TimeUnit.MILLISECONDS);
    }

    @Override
    public Multi<GenerationEvent> generate(GenerationRequest request) {
        return Multi.createFrom().deferred(() -> {
            String id = request.requestId();
            if (!requests.claim(id, request.sessionId(), owner, ttl)) {
                throw new GatewayException(GatewayException.Kind.ALREADY_EXISTS,
                        "request id " + id + " is already in use (a request with it runs on a gateway)");
            }
            live.add(id);
            try {
                return engine.generate(request).onTermination().invoke(() -> ended(id));
            } catch (RuntimeException e) {
                ended(id);
                throw e;
            }
        });
    }

    /** Unregisters on the poll thread: the stream's end may come on a thread that must not block. */
    private void ended(String id) {
        if (!live.remove(id)) {
            return;
        }
        try {
            poller.execute(() -> {
                try {
                    requests.finished(id, owner);
                } catch (RuntimeException e) {
                    LOG.warnf("request %s: unregistering it failed (%s); its row expires within %s",
                            id, e.getMessage(), ttl);
                }
            });
        } catch (RejectedExecutionException e) {
            LOG.debugf("request %s ended while closing; its row expires within %s", id, ttl);
        }
    }

    @Override
    public CancelOutcome cancelAnywhere(String requestId) {
        if (engine.cancel(requestId)) {
            return CancelOutcome.CANCELLED;
        }
        if (!requests.requestCancel(requestId)) {
            return CancelOutcome.NOT_FOUND;
        }
        long deadline = System.nanoTime() + answerWait.toNanos();
        long pause = Math.max(10, pollInterval.toMillis() / 2);
        while (true) {
            switch (requests.answer(requestId)) {
                case CANCELLED -> {
                    return CancelOutcome.CANCELLED;
                }
                case FINISHED -> {
                    return CancelOutcome.ALREADY_FINISHED;
                }
                case GONE -> {
                    return CancelOutcome.NOT_FOUND;
                }
                case PENDING -> {
                    if (System.nanoTime() > deadline) {
                        throw new GatewayException(GatewayException.Kind.UNAVAILABLE, "request " + requestId
                                + " runs on another gateway, which has not confirmed the cancel within " + answerWait
                                + "; it stops the request when it next polls; Cancel again to learn the outcome");
                    }
                    try {
                        Thread.sleep(pause);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        throw new GatewayException(GatewayException.Kind.UNAVAILABLE, "interrupted while waiting"
                                + " for the gateway running request " + requestId + " to confirm the cancel");
                    }
                }
            }
        }
    }

    /**
     * How often idle sessions' KV is checked against the store: every 20 polls and at most once a
     * second (one small query, and only while the engine keeps idle sessions).
     */
    static Duration kvSweepInterval(Duration pollInterval) {
        Duration twentyPolls = pollInterval.multipliedBy(20);
        return twentyPolls.compareTo(Duration.ofSeconds(1)) > 0 ? twentyPolls : Duration.ofSeconds(1);
    }

    /** One poll: stop this gateway's requests that others asked to cancel; now and then renew and sweep. */
    private void poll() {
        try {
            if (!live.isEmpty()) {
                for (String id : requests.cancelsFor(owner)) {
                    if (engine.cancel(id)) {
                        requests.cancelled(id, owner);
                        LOG.debugf("request %s cancelled from another gateway", id);
                    }
                    // Otherwise it is starting (asked again next poll) or ending (its end answers).
                }
            }
            if (System.nanoTime() - lastRenewal > ttl.toNanos() / 3) {
                lastRenewal = System.nanoTime();
                if (!live.isEmpty()) {
                    requests.renew(owner, ttl);
                }
                requests.sweep();
            }
            if (System.nanoTime() - lastKvSweep > kvSweepInterval.toNanos()) {
                lastKvSweep = System.nanoTime();
                freeKvOfDeletedSessions();
            }
        } catch (RuntimeException e) {
            LOG.warnf("polling for cancels failed: %s", e.getMessage());
        }
    }

    private void freeKvOfDeletedSessions() {
        Map<String, String> sequences = new HashMap<>();
        for (String sequenceId : engine.idleSequenceIds()) {
            Session.sessionIdOf(sequenceId).ifPresent(sessionId -> sequences.put(sessionId, sequenceId));
        }
        // A deleted session never comes back (ids are not reused) and no turn can start on it, so
        // its idle KV is no one's once its row is gone.
        for (String sessionId : requests.sessionsGone(sequences.keySet())) {
            LOG.debugf("session %s was deleted through another gateway; freeing its KV", sessionId);
            engine.release(sequences.get(sessionId));
        }
    }

    @Override
    public void close() throws Exception {
        poller.shutdown();
        poller.awaitTermination(5, TimeUnit.SECONDS);
        super.close();
    }
}
