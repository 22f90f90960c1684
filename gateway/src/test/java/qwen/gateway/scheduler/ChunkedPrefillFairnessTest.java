package qwen.gateway.scheduler;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import qwen.gateway.testing.Await;
import qwen.gateway.chat.GatewayException;
import qwen.gateway.shard.Pipeline;
import qwen.gateway.testing.FakeShard;
import qwen.proto.shard.v1.SampledToken;
import qwen.proto.shard.v1.SamplingParams;
import qwen.proto.shard.v1.SequenceStep;
import qwen.proto.shard.v1.StepRequest;

/**
 * A 2,000-token prompt arrives while 8 streams decode, on a shard whose step takes time in
 * proportion to the tokens it carries: the decoding streams keep getting a token every step, and
 * the longest wait for their next token is one decode step plus one prefill chunk, not the whole
 * prompt's prefill.
 */
@Timeout(60)
class ChunkedPrefillFairnessTest {

    private static final SamplingParams GREEDY = SamplingParams.newBuilder().setGreedy(true).setTopP(1)
            .setRepetitionPenalty(1).build();
    private static final int DECODERS = 8;
    private static final int CHUNK = 256;
    private static final int LONG_PROMPT = 2000;
    private static final Duration PER_TOKEN = Duration.ofNanos(250_000);

    /** Records when each token came. */
    private static final class Timed implements SequenceListener {
        final List<Long> times = new ArrayList<>();
        final CompletableFuture<GatewayException> ended = new CompletableFuture<>();
        final int limit;

        Timed(int limit) {
            this.limit = limit;
        }

        @Override
        public void onScheduled() {
        }

        @Override
        public synchronized boolean onToken(SampledToken token) {
            times.add(System.nanoTime());
            return times.size() < limit;
        }

        @Override
        public void onEnded(int[] heldIds, boolean cancelled, GatewayException failure) {
            ended.complete(failure);
        }

        synchronized int count() {
            return times.size();
        }

        /** The longest gap between consecutive tokens among those that came after {@code from}. */
        synchronized long longestGapAfter(long from) {
            long longest = 0;
            for (int i = 1; i < times.size(); i++) {
                if (times.get(i) > from) {
                    longest = Math.max(longest, times.get(i) - times.get(i - 1));
                }
            }
            return longest;
        }
    }

    private static int[] prompt(int length, int salt) {
        int[] ids = new int[length];
        for (int i = 0; i < length; i++) {
            ids[i] = 100 + (7 * i + salt) % 5000;
        }
        return ids;
    }

    @Test
    void aLongPromptDelaysDecodingStreamsByAtMostOneChunk() throws Exception {
        FakeShard shard = FakeShard.whole(8192, 0);
        shard.tokenDelay(PER_TOKEN);
        Pipeline pipeline = Pipeline.open(List.of(shard), Duration.ofSeconds(10));
        try (StepScheduler scheduler = new StepScheduler(pipeline,
                new StepScheduler.Options(DECODERS + CHUNK, 16, pipeline.kvCapacityTokens()), KvEvictor.NONE)) {
            List<Timed> decoders = new ArrayList<>();
            List<ScheduledSequence> sequences = new ArrayList<>();
            for (int i = 0; i < DECODERS; i++) {
                Timed timed = new Timed(100_000);
                ScheduledSequence sequence = new ScheduledSequence("d" + i, prompt(5, i), 0, false, GREEDY, 4096, timed);
                decoders.add(timed);
                sequences.add(sequence);
                scheduler.submit(sequence);
            }
            awaitTrue(() -> decoders.stream().allMatch(d -> d.count() >= 5));

            long arrival = System.nanoTime();
            int requestsBefore = shard.requests().size();
            Timed longPrompt = new Timed(1);
            scheduler.submit(new ScheduledSequence("long", prompt(LONG_PROMPT, 99), 0, false, GREEDY,
                    LONG_PROMPT + 1, longPrompt));
            assertNull(longPrompt.ended.get(30, TimeUnit.SECONDS));
            long prefilled = System.nanoTime();
            awaitTrue(() -> decoders.stream().allMatch(d -> d.longestGapAfter(prefilled) > 0));
            sequences.forEach(ScheduledSequence::cancel);
            for (Timed decoder : decoders) {
                decoder.ended.get(10, TimeUnit.SECONDS);
            }

            // Every step that read a chunk of the long prompt also gave each decoding stream its token.
            int chunks = 0;
            for (StepRequest step : shard.requests().subList(requestsBefore, shard.requests().size())) {
                List<SequenceStep> entries = step.getSequencesList();
                SequenceStep chunk = entries.stream().filter(e -> e.getSequenceId().equals("long")).findFirst()
                        .orElse(null);
                if (chunk == null) {
                    continue;
                }
                chunks++;
                assertTrue(chunk.getTokenIdsCount() <= CHUNK, "a chunk of " + chunk.getTokenIdsCount() + " tokens");
                assertEquals(DECODERS, entries.stream().filter(e -> e.getTokenIdsCount() == 1).count(),
                        "every decoding stream shares the step with the chunk");
            }
            assertEquals((LONG_PROMPT + CHUNK - 1) / CHUNK, chunks, "the prompt is read in chunks of " + CHUNK);

            // In time: one decode step (8 tokens) plus one chunk, with room for a loaded machine; the
            // whole prompt at once would take 2,000 x 250 us = 500 ms.
            long chunkNanos = PER_TOKEN.toNanos() * (CHUNK + DECODERS);
            long bound = 2 * chunkNanos;
            for (int i = 0; i < DECODERS; i++) {
                long gap = decoders.get(i).longestGapAfter(arrival);
                assertTrue(gap <= bound, "stream " + i + " waited " + gap / 1_000_000 + " ms for a token; one chunk"
                        + " is " + chunkNanos / 1_000_000 + " ms, the bound " + bound / 1_000_000 + " ms");
            }
        }
    }

    private static void awaitTrue(java.util.function.BooleanSupplier condition) {
        Await.until(condition, java.time.Duration.ofSeconds(20), "the condition");
    }
}
