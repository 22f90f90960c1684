package qwen.gateway.metrics;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import jakarta.inject.Singleton;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntSupplier;
import java.util.function.ToDoubleFunction;
import qwen.gateway.chat.ChatEngine;
import qwen.gateway.chat.Generations;

/**
 * The gateway's Prometheus metrics (on /q/metrics), named as the README's metrics table lists
 * them. Counting happens in {@link MeteredGenerations}, which wraps the engine, so that the gRPC and
 * the HTTP API are counted alike; the gauges read the engine's scheduler state when scraped.
 */
@Singleton
public class GenerationMetrics {

    /** Bucket bounds of the time-to-first-token histogram: prefill of long prompts can take seconds. */
    private static final Duration[] FIRST_TOKEN_BUCKETS = seconds(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60);
    /** Bucket bounds of the inter-token histogram: one decode step, batched, on CPU or GPU. */
    private static final Duration[] INTER_TOKEN_BUCKETS = seconds(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5);

    private final MeterRegistry registry;
    private final Timer firstToken;
    private final Timer interToken;
    private final Counter promptTokens;
    private final Counter cachedPromptTokens;
    private final Counter outputTokens;
    private final DistributionSummary requestOutputTokens;
    private final AtomicInteger inFlight = new AtomicInteger();
    private final ConcurrentHashMap<String, Counter> outcomes = new ConcurrentHashMap<>();

    public GenerationMetrics(MeterRegistry registry) {
        this.registry = registry;
        this.firstToken = Timer.builder("qwen.gateway.time.to.first.token")
                .description("Time from a request's arrival at the engine to its first generated token")
                .serviceLevelObjectives(FIRST_TOKEN_BUCKETS).register(registry);
        this.interToken = Timer.builder("qwen.gateway.inter.token.latency")
                .description("Time between consecutive generated tokens of one request")
                .serviceLevelObjectives(INTER_TOKEN_BUCKETS).register(registry);
        this.promptTokens = Counter.builder("qwen.gateway.prompt.tokens").baseUnit("tokens")
                .description("Prompt tokens of the requests that started").register(registry);
        this.cachedPromptTokens = Counter.builder("qwen.gateway.prompt.cached.tokens").baseUnit("tokens")
                .description("Prompt tokens whose KV the shards already held (not prefilled again)").register(registry);
        this.outputTokens = Counter.builder("qwen.gateway.output.tokens").baseUnit("tokens")
                .description("Tokens generated, end tokens included").register(registry);
        this.requestOutputTokens = DistributionSummary.builder("qwen.gateway.request.output.tokens").baseUnit("tokens")
                .description("Tokens generated per finished request").register(registry);
        Gauge.builder("qwen.gateway.requests.in.flight", inFlight, AtomicInteger::get)
                .description("Generations started and not yet ended").register(registry);
    }

    /** Wraps the engine so that its generations are counted, and registers its load gauges. */
    public Generations meter(ChatEngine engine) {
        return meter(engine, engine::runningSequences, engine::queuedRequests);
    }

    /**
     * Wraps {@code engine} so that its generations are counted, with load gauges read from
     * {@code running} (sequences in the running batches) and {@code queued} (requests waiting).
     */
    public Generations meter(Generations engine, IntSupplier running, IntSupplier queued) {
        gauge("qwen.gateway.active.sequences", "Sequences in the running batch", running, IntSupplier::getAsInt);
        gauge("qwen.gateway.queue.depth", "Requests waiting to start", queued, IntSupplier::getAsInt);
        return new MeteredGenerations(engine, this);
    }

    /** Generations started and not yet ended (what a drain waits for). */
    public int inFlight() {
        return inFlight.get();
    }

    void started(int prompt, int cached) {
        promptTokens.increment(prompt);
        cachedPromptTokens.increment(cached);
    }

    void firstToken(long nanos) {
        firstToken.record(Duration.ofNanos(nanos));
    }

    void interToken(long nanos) {
        interToken.record(Duration.ofNanos(nanos));
    }

    void tokens(int count) {
        outputTokens.increment(count);
    }

    void enter() {
        inFlight.incrementAndGet();
    }

    /**
     * Counts one ended request.
     *
     * @param outcome stop, length, cancelled, or the failure's status name in lower case
     */
    void ended(String outcome, int generated) {
        inFlight.decrementAndGet();
        String tag = outcome.toLowerCase(Locale.ROOT);
        outcomes.computeIfAbsent(tag, o -> Counter.builder("qwen.gateway.requests")
                .description("Requests that reached the engine, by how they ended").tag("outcome", o)
                .register(registry)).increment();
        requestOutputTokens.record(generated);
    }

    private <T> void gauge(String name, String description, T state, ToDoubleFunction<T> value) {
        Gauge.builder(name, state, value).description(description).strongReference(true).register(registry);
    }

    private static Duration[] seconds(double... bounds) {
        Duration[] durations = new Duration[bounds.length];
        for (int i = 0; i < bounds.length; i++) {
            durations[i] = Duration.ofNanos(Math.round(bounds[i] * 1e9));
        }
        return durations;
    }
}
