package qwen.gateway.grpc;

import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import qwen.proto.chat.v1.ChatEvent;
import qwen.proto.chat.v1.ChatMessage;
import qwen.proto.chat.v1.ChatRequest;
import qwen.proto.chat.v1.Role;

/**
 * Starts stateless Chat calls, a bounded number at a time, and has the client cancel each one as
 * soon as its first Delta arrives.
 */
final class CancelStorm {

    /** How the calls ended: cancelled after a Delta, or ended (finished or failed) before one. */
    record Result(int sawDelta, int endedBeforeDelta, String firstUnexpectedError) {
    }

    private final ChatClient client;
    private final int calls;
    private final int concurrency;

    CancelStorm(ChatClient client, int calls, int concurrency) {
        this.client = client;
        this.calls = calls;
        this.concurrency = concurrency;
    }

    Result run() throws InterruptedException {
        Semaphore slots = new Semaphore(concurrency);
        CountDownLatch done = new CountDownLatch(calls);
        AtomicInteger sawDelta = new AtomicInteger();
        AtomicInteger endedBeforeDelta = new AtomicInteger();
        AtomicReference<String> unexpected = new AtomicReference<>("");
        for (int i = 0; i < calls; i++) {
            slots.acquire();
            ChatRequest request = ChatRequest.newBuilder()
                    .addMessages(ChatMessage.newBuilder().setRole(Role.ROLE_USER).setContent("Count to a thousand, " + i))
                    .setParams(ChatClient.greedy(256)).build();
            client.async().chat(request, new ClientResponseObserver<ChatRequest, ChatEvent>() {
                private ClientCallStreamObserver<ChatRequest> call;
                private boolean cancelled;

                @Override
                public void beforeStart(ClientCallStreamObserver<ChatRequest> requestStream) {
                    call = requestStream;
                }

                @Override
                public void onNext(ChatEvent event) {
                    if (event.hasDelta() && !cancelled) {
                        cancelled = true;
                        sawDelta.incrementAndGet();
                        call.cancel("test cancels after the first delta", null);
                    }
                }

                @Override
                public void onError(Throwable t) {
                    if (!cancelled) {
                        endedBeforeDelta.incrementAndGet();
                        unexpected.compareAndSet("", t.toString());
                    }
                    end();
                }

                @Override
                public void onCompleted() {
                    if (!cancelled) {
                        endedBeforeDelta.incrementAndGet();
                    }
                    end();
                }

                private void end() {
                    slots.release();
                    done.countDown();
                }
            });
        }
        if (!done.await(3, TimeUnit.MINUTES)) {
            throw new AssertionError("calls still open after 3 minutes: " + done.getCount());
        }
        return new Result(sawDelta.get(), endedBeforeDelta.get(), unexpected.get());
    }
}
