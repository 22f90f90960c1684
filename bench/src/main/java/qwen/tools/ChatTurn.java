package qwen.tools;

import io.grpc.Context;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.PrintStream;
import java.util.Iterator;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import qwen.proto.chat.v1.CancelRequest;
import qwen.proto.chat.v1.ChatEvent;
import qwen.proto.chat.v1.ChatRequest;
import qwen.proto.chat.v1.ChatServiceGrpc.ChatServiceBlockingStub;
import qwen.proto.chat.v1.Finished;

/**
 * One assistant turn of {@code ./qwen chat}: runs the Chat call on the calling thread, printing
 * each Delta's text the moment it arrives, and can be stopped from another thread (the Ctrl-C
 * handler) with {@link #cancel()}.
 *
 * <p>Cancelling asks the server first (Cancel with the turn's request_id), so that the stream ends
 * normally with FINISH_REASON_CANCELLED and the session is left as it was. When the server has no
 * such request running (the call was still being admitted), or on a second Ctrl-C, the call itself
 * is cancelled, which the server treats the same way.
 */
final class ChatTurn {

    private final ChatServiceBlockingStub stub;
    private final ChatRequest request;
    private final Context.CancellableContext context = Context.current().withCancellation();
    private final AtomicBoolean cancelAsked = new AtomicBoolean();

    /** @param request a ChatRequest with its request_id set, so that Cancel can name it */
    ChatTurn(ChatServiceBlockingStub stub, ChatRequest request) {
        if (request.getRequestId().isEmpty()) {
            throw new IllegalArgumentException("a cancellable turn needs a request_id");
        }
        this.stub = stub;
        this.request = request;
    }

    /**
     * Streams the reply to {@code out}.
     *
     * @return the Finished event; null when the call was dropped by {@link #cancel()}
     * @throws StatusRuntimeException when the server ends the call with an error status
     */
    Finished run(PrintStream out) {
        try {
            return context.call(() -> stream(out));
        } catch (StatusRuntimeException e) {
            if (cancelAsked.get() && e.getStatus().getCode() == Status.Code.CANCELLED) {
                return null;
            }
            throw e;
        } catch (Exception e) {
            throw new IllegalStateException(e);
        } finally {
            context.cancel(null);
        }
    }

    private Finished stream(PrintStream out) {
        Iterator<ChatEvent> events = stub.chat(request);
        Finished finished = null;
        while (events.hasNext()) {
            ChatEvent event = events.next();
            switch (event.getEventCase()) {
                case DELTA -> {
                    out.print(event.getDelta().getText());
                    out.flush();
                }
                case FINISHED -> finished = event.getFinished();
                default -> { }
            }
        }
        return finished;
    }

    /** Stops the turn: Cancel by request_id the first time, dropping the call when that finds nothing or on a second call. */
    void cancel() {
        if (!cancelAsked.compareAndSet(false, true)) {
            context.cancel(null);
            return;
        }
        try {
            boolean found = stub.withDeadlineAfter(5, TimeUnit.SECONDS)
                    .cancel(CancelRequest.newBuilder().setRequestId(request.getRequestId()).build())
                    .getFound();
            if (!found) {
                context.cancel(null);
            }
        } catch (StatusRuntimeException e) {
            context.cancel(e);
        }
    }
}
