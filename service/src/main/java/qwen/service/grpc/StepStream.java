package qwen.service.grpc;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.smallrye.mutiny.Multi;
import io.smallrye.mutiny.subscription.Cancellable;
import io.smallrye.mutiny.subscription.MultiEmitter;
import java.util.concurrent.atomic.AtomicBoolean;
import qwen.proto.shard.v1.StepRequest;
import qwen.proto.shard.v1.StepResponse;
import qwen.service.metrics.ShardMetrics;

/**
 * One Step call: each request is queued on the model thread the moment it arrives (so queue_ns
 * counts the wait behind earlier steps) and answered from there, which keeps the answers in
 * request order. The first stream-ending status fails the call; requests still queued are then
 * skipped.
 */
final class StepStream {

    private final ShardRuntime runtime;
    private final ShardMetrics metrics;
    private final StepTranslator translator;
    private final MultiEmitter<? super StepResponse> out;
    private final AtomicBoolean ended = new AtomicBoolean();
    private volatile Cancellable upstream;

    private StepStream(ShardRuntime runtime, ShardMetrics metrics, StepTranslator translator,
                       MultiEmitter<? super StepResponse> out) {
        this.runtime = runtime;
        this.metrics = metrics;
        this.translator = translator;
        this.out = out;
    }

    /** The responses to {@code requests}; fails with UNAVAILABLE unless the shard is serving. */
    static Multi<StepResponse> responses(ShardRuntime runtime, ShardMetrics metrics, Multi<StepRequest> requests) {
        return Multi.createFrom().emitter(out -> {
            StepTranslator translator = new StepTranslator(runtime.engine(), runtime.settings().maxStepTokens());
            StepStream stream = new StepStream(runtime, metrics, translator, out);
            out.onTermination(stream::cancelUpstream);
            stream.upstream = requests.subscribe().with(stream::onRequest, stream::onClientFailure, stream::onClientDone);
        });
    }

    private void onRequest(StepRequest request) {
        long arrived = System.nanoTime();
        try {
            runtime.execute(() -> run(request, arrived));
        } catch (StatusRuntimeException e) {
            fail(e);
        }
    }

    private void run(StepRequest request, long arrived) {
        if (ended.get()) {
            return;
        }
        try {
            StepResponse response;
            long began = System.nanoTime();
            try {
                response = translator.run(request, arrived);
            } finally {
                runtime.noteSequencesHeld();   // before the answer leaves, so a following Info sees it
            }
            metrics.step(request.getSequencesCount(), tokens(request), System.nanoTime() - began);
            out.emit(response);
        } catch (StatusRuntimeException e) {
            fail(e);
        } catch (RuntimeException | Error e) {
            // A fault in the step (an Error too: out of memory, a broken class path) must end the
            // stream at once; otherwise the gateway waits out its step timeout.
            fail(Status.INTERNAL.withDescription("step " + Long.toUnsignedString(request.getStepId()) + " failed: " + e)
                    .withCause(e).asRuntimeException());
        }
    }

    private static int tokens(StepRequest request) {
        int tokens = 0;
        for (int i = 0; i < request.getSequencesCount(); i++) {
            tokens += request.getSequences(i).getTokenIdsCount();
        }
        return tokens;
    }

    /** The gateway half-closed: answer what is queued, then end the call. */
    private void onClientDone() {
        try {
            runtime.execute(() -> {
                if (ended.compareAndSet(false, true)) {
                    out.complete();
                }
            });
        } catch (StatusRuntimeException e) {
            fail(e);
        }
    }

    /** The call was cancelled or broke: nothing can be answered any more; queued steps are skipped. */
    private void onClientFailure(Throwable failure) {
        if (ended.compareAndSet(false, true)) {
            out.fail(failure);
        }
    }

    private void fail(StatusRuntimeException status) {
        if (ended.compareAndSet(false, true)) {
            cancelUpstream();
            out.fail(status);
        }
    }

    private void cancelUpstream() {
        ended.set(true);
        Cancellable u = upstream;
        if (u != null) {
            u.cancel();
        }
    }
}
