package qwen.gateway.chat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Flow;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import qwen.gateway.shard.Pipeline;
import qwen.gateway.shard.ShardClient;
import qwen.gateway.testing.ShardProcess;
import qwen.gateway.tokenizer.QwenTokenizer;
import qwen.proto.shard.v1.ShardInfo;

/**
 * 1,000 generations cancelled at random points (before they are queued, while queued, during
 * prefill, after some tokens; by dropping the subscription as a disconnecting client does, or by
 * request id as gRPC Cancel does), 16 at a time, on a real shard process: afterwards the shard
 * holds no KV at all and the scheduler is idle. Needs the built service jar.
 */
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class RandomCancellationTest {

    private static final QwenTokenizer TOKENIZER = QwenTokenizer.bundled();
    private static final PromptBuilder PROMPTS = new PromptBuilder(new ChatTemplate(TOKENIZER),
            GenerationDefaults.bundled());
    private static final int REQUESTS = 1000;
    private static final int CLIENTS = 16;

    private static ShardProcess shard;
    private static ChatEngine engine;

    @BeforeAll
    static void start() {
        shard = ShardProcess.start("0-1");
        Pipeline pipeline = Pipeline.open(List.of(ShardClient.create(shard.address(), Duration.ofSeconds(10))),
                Duration.ofSeconds(60));
        engine = new ChatEngine(TOKENIZER, () -> pipeline, 512, 4 * REQUESTS);
    }

    @AfterAll
    static void stop() {
        if (engine != null) {
            engine.close();
        }
        if (shard != null) {
            shard.close();
        }
    }

    /** Counts events; cancels its subscription on demand. */
    private static final class Client implements Flow.Subscriber<GenerationEvent> {
        final AtomicInteger events = new AtomicInteger();
        final CountDownLatch ended = new CountDownLatch(1);
        volatile Flow.Subscription subscription;
        volatile Throwable failure;

        @Override
        public void onSubscribe(Flow.Subscription s) {
            subscription = s;
            s.request(Long.MAX_VALUE);
        }

        @Override
        public void onNext(GenerationEvent event) {
            events.incrementAndGet();
        }

        @Override
        public void onError(Throwable t) {
            failure = t;
            ended.countDown();
        }

        @Override
        public void onComplete() {
            ended.countDown();
        }

        /** Waits until {@code count} events came or the stream ended. */
        void awaitEvents(int count) throws InterruptedException {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (events.get() < count && ended.getCount() > 0 && System.nanoTime() < deadline) {
                Thread.sleep(1);
            }
        }
    }

    @Test
    void noKvIsLeftAfterAThousandRandomCancellations() throws Exception {
        int[][] prompts = new int[8][];
        for (int i = 0; i < prompts.length; i++) {
            prompts[i] = PROMPTS.build(new Conversation(ChatTemplate.DEFAULT_SYSTEM_PROMPT, List.of(),
                    "Question number " + i + ": " + "why? ".repeat(i * 3)));
        }
        // One whole generation first, on this thread: Mutiny's context propagation initialises
        // itself racily when first used from many threads at once outside Quarkus.
        engine.generate(new GenerationRequest("warm-up", null, "warm-up", false, prompts[0],
                new GenerationSettings(4, true, 1f, 0, 1f, 1.1f, 1L, List.of(), false, 0)))
                .collect().asList().await().atMost(Duration.ofSeconds(60));
        Map<String, Integer> ways = new ConcurrentHashMap<>();
        Map<String, Integer> unexpected = new ConcurrentHashMap<>();
        AtomicInteger next = new AtomicInteger();
        ExecutorService pool = Executors.newFixedThreadPool(CLIENTS);
        try {
            List<Future<?>> clients = new ArrayList<>();
            for (int c = 0; c < CLIENTS; c++) {
                long seed = c;
                clients.add(pool.submit(() -> {
                    SplittableRandom random = new SplittableRandom(seed);
                    for (int n; (n = next.getAndIncrement()) < REQUESTS; ) {
                        String way = cancelOne(n, prompts[random.nextInt(prompts.length)], random);
                        if (way.startsWith("failed")) {
                            unexpected.merge(way, 1, Integer::sum);
                        }
                        ways.merge(way.startsWith("failed") ? "failed" : way, 1, Integer::sum);
                    }
                    return null;
                }));
            }
            for (Future<?> client : clients) {
                client.get(4, TimeUnit.MINUTES);
            }
        } finally {
            pool.shutdownNow();
        }
        assertEquals(REQUESTS, ways.values().stream().mapToInt(Integer::intValue).sum());
        assertTrue(unexpected.isEmpty(), "failures other than cancellation: " + unexpected);
        System.out.println("cancellations: " + new java.util.TreeMap<>(ways));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        ShardInfo info = shard.info();
        while (info.getSequencesHeld() != 0 || info.getKvBytesInUse() != 0
                || engine.runningSequences() != 0 || engine.queuedRequests() != 0) {
            assertTrue(System.nanoTime() < deadline, "left behind after " + ways + ": " + info.getSequencesHeld()
                    + " sequences and " + info.getKvBytesInUse() + " KV bytes on the shard, "
                    + engine.runningSequences() + " running and " + engine.queuedRequests() + " queued");
            Thread.sleep(20);
            info = shard.info();
        }
    }

    /** Starts one generation and cancels it at a random point; returns how. */
    private static String cancelOne(int n, int[] prompt, SplittableRandom random) throws InterruptedException {
        GenerationRequest request = new GenerationRequest("r" + n, null, "s" + n, false, prompt,
                new GenerationSettings(6, false, 0.8f, 0, 1f, 1.1f, n, List.of(), false, 0));
        Client client = new Client();
        engine.generate(request).subscribe().withSubscriber(client);
        int way = random.nextInt(4);
        switch (way) {
            case 0 -> LockSupport.parkNanos(random.nextLong(2_000_000)); // at once, or while queued
            case 1, 2 -> client.awaitEvents(1 + random.nextInt(5));      // after Started and some tokens
            default -> LockSupport.parkNanos(random.nextLong(10_000_000));
        }
        boolean done = client.ended.getCount() == 0;
        if (way == 2) {
            engine.cancel(request.requestId());
        } else {
            client.subscription.cancel();
        }
        if (done && client.failure != null) {
            return "failed: " + client.failure;
        }
        return (done ? "finished before cancel, " : "cancelled, ") + (way == 2 ? "by id" : "by dropping");
    }
}
