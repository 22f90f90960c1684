package qwen.gateway.metrics;

import io.smallrye.mutiny.Multi;
import java.util.concurrent.atomic.AtomicBoolean;
import qwen.gateway.chat.ForwardingGenerations;
import qwen.gateway.chat.GatewayException;
import qwen.gateway.chat.GenerationEvent;
import qwen.gateway.chat.GenerationRequest;
import qwen.gateway.chat.Generations;

/**
 * The engine with its generations counted in {@link GenerationMetrics}: one outcome per request,
 * whether it finishes, fails or its subscriber goes away.
 */
final class MeteredGenerations extends ForwardingGenerations {

    private final GenerationMetrics metrics;

    MeteredGenerations(Generations engine, GenerationMetrics metrics) {
        super(engine);
        this.metrics = metrics;
    }

    @Override
    public Multi<GenerationEvent> generate(GenerationRequest request) {
        return Multi.createFrom().deferred(() -> {
            Tally tally = new Tally();
            return engine.generate(request)
                    .onItem().invoke(tally::event)
                    .onFailure().invoke(tally::failed)
                    .onCancellation().invoke(tally::cancelled);
        });
    }

    /** One request's count; the first ending wins. */
    private final class Tally {
        private final long subscribed = System.nanoTime();
        private final AtomicBoolean ended = new AtomicBoolean();
        private long lastToken;
        private int tokens;

        Tally() {
            metrics.enter();
        }

        synchronized void event(GenerationEvent event) {
            switch (event) {
                case GenerationEvent.Started started -> metrics.started(started.promptTokens(), started.cachedPromptTokens());
                case GenerationEvent.Delta delta -> tokens(delta.tokenIds().length);
                case GenerationEvent.Finished finished -> finished(finished);
            }
        }

        /** A stop token ends the reply without a Delta of its own; usage counts it, so count it here. */
        private void finished(GenerationEvent.Finished finished) {
            int generated = finished.usage().completionTokens();
            if (generated > tokens) {
                metrics.tokens(generated - tokens);
                tokens = generated;
            }
            end(finished.reason().name(), generated);
        }

        private void tokens(int count) {
            if (count == 0) {
                return;
            }
            long now = System.nanoTime();
            if (tokens == 0) {
                metrics.firstToken(now - subscribed);
            } else {
                metrics.interToken((now - lastToken) / count);
            }
            lastToken = now;
            tokens += count;
            metrics.tokens(count);
        }

        void failed(Throwable failure) {
            end(failure instanceof GatewayException e ? e.kind().name() : "internal", tokens);
        }

        void cancelled() {
            end("cancelled", tokens);
        }

        private void end(String outcome, int generated) {
            if (ended.compareAndSet(false, true)) {
                metrics.ended(outcome, generated);
            }
        }
    }
}
