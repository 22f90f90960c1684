package qwen.gateway.shard;

import io.grpc.ConnectivityState;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import qwen.proto.shard.v1.InfoRequest;
import qwen.proto.shard.v1.ReleaseRequest;
import qwen.proto.shard.v1.ReleaseResponse;
import qwen.proto.shard.v1.ShardInfo;
import qwen.proto.shard.v1.ShardServiceGrpc;
import qwen.proto.shard.v1.StepRequest;
import qwen.proto.shard.v1.StepResponse;

/**
 * A shard over gRPC: one channel, and one long-lived Step stream on which answers are matched to
 * requests by step_id, in order.
 *
 * <p>When the stream fails (the shard died, restarted or broke the contract) every step in flight
 * fails with a {@link ShardException} and the next step opens a new stream, after a backoff that
 * doubles with each failure in a row (100 ms up to 5 s); steps sent during the backoff fail at once
 * with UNAVAILABLE, so a dead shard fails its generations quickly instead of stalling the
 * scheduler. Past the backoff the next step waits up to 2 s for the channel to reconnect before it
 * opens the new stream.
 */
public final class ShardClient implements Shard {

    /**
     * Largest message accepted: an F32 chunk of 512 tokens of a 2048-wide model is 4 MiB of hidden
     * rows; 64 MiB leaves room for wider models and longer chunks.
     */
    public static final int MAX_MESSAGE_BYTES = 64 << 20;

    private static final long BACKOFF_FIRST_NANOS = TimeUnit.MILLISECONDS.toNanos(100);
    private static final long BACKOFF_MAX_NANOS = TimeUnit.SECONDS.toNanos(5);
    private static final long RECONNECT_WAIT_NANOS = TimeUnit.SECONDS.toNanos(2);

    private final String address;
    private final ManagedChannel channel;
    private final ShardServiceGrpc.ShardServiceBlockingStub blocking;
    private final ShardServiceGrpc.ShardServiceStub async;
    private final Duration callTimeout;

    // The Step stream; guarded by this.
    private ClientCallStreamObserver<StepRequest> stream;
    private long streamGeneration;
    private final ArrayDeque<InFlight> inFlight = new ArrayDeque<>();
    private int failuresInARow;
    private long reconnectAtNanos;
    private boolean closed;

    private record InFlight(long stepId, CompletableFuture<StepResponse> answer) {
    }

    private ShardClient(String address, ManagedChannel channel, Duration callTimeout) {
        this.address = address;
        this.channel = channel;
        this.blocking = ShardServiceGrpc.newBlockingStub(channel).withMaxInboundMessageSize(MAX_MESSAGE_BYTES);
        this.async = ShardServiceGrpc.newStub(channel)
                .withMaxInboundMessageSize(MAX_MESSAGE_BYTES)
                .withMaxOutboundMessageSize(MAX_MESSAGE_BYTES);
        this.callTimeout = callTimeout;
    }

    /**
     * Creates a client for the shard at {@code address}; connects lazily, on the first call.
     *
     * @param address {@code host:port}
     * @param callTimeout deadline of each Info and Release call
     */
    public static ShardClient create(String address, Duration callTimeout) {
        return create(address, callTimeout, ShardTransport.PLAINTEXT);
    }

    /** {@link #create(String, Duration)} over plaintext or TLS as {@code transport} says. */
    public static ShardClient create(String address, Duration callTimeout, ShardTransport transport) {
        Objects.requireNonNull(callTimeout, "callTimeout");
        int colon = address.lastIndexOf(':');
        if (colon <= 0) {
            throw new IllegalArgumentException("shard address '" + address + "' is not host:port");
        }
        String host = address.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }
        int port = Integer.parseInt(address.substring(colon + 1));
        ManagedChannel channel = transport.apply(NettyChannelBuilder.forAddress(host, port))
                .maxInboundMessageSize(MAX_MESSAGE_BYTES)
                .directExecutor() // callbacks only complete futures
                .build();
        return new ShardClient(address, channel, callTimeout);
    }

    @Override
    public String address() {
        return address;
    }

    @Override
    public ShardInfo info() {
        try {
            return blocking.withDeadlineAfter(callTimeout.toNanos(), TimeUnit.NANOSECONDS)
                    .info(InfoRequest.getDefaultInstance());
        } catch (RuntimeException e) {
            throw ShardException.of(address, e);
        }
    }

    @Override
    public ReleaseResponse release(List<String> sequenceIds) {
        try {
            return blocking.withDeadlineAfter(callTimeout.toNanos(), TimeUnit.NANOSECONDS)
                    .release(ReleaseRequest.newBuilder().addAllSequenceIds(sequenceIds).build());
        } catch (RuntimeException e) {
            throw ShardException.of(address, e);
        }
    }

    @Override
    public CompletableFuture<StepResponse> step(StepRequest request) {
        if (reconnecting()) {
            // A stream started while the channel is in TRANSIENT_FAILURE fails at once, even when the
            // shard is back; give the channel a moment to reconnect first (outside the lock).
            channel.resetConnectBackoff();
            awaitReady();
        }
        return send(request);
    }

    private synchronized boolean reconnecting() {
        return stream == null && !closed && failuresInARow > 0 && reconnectAtNanos - System.nanoTime() <= 0;
    }

    private void awaitReady() {
        long deadline = System.nanoTime() + RECONNECT_WAIT_NANOS;
        ConnectivityState state = channel.getState(true);
        try {
            while (state != ConnectivityState.READY && state != ConnectivityState.SHUTDOWN) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return;
                }
                CountDownLatch changed = new CountDownLatch(1);
                channel.notifyWhenStateChanged(state, changed::countDown);
                changed.await(left, TimeUnit.NANOSECONDS);
                state = channel.getState(true);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private synchronized CompletableFuture<StepResponse> send(StepRequest request) {
        if (closed) {
            return CompletableFuture.failedFuture(
                    new ShardException(address, Status.Code.UNAVAILABLE, "the client is closed", null));
        }
        if (stream == null) {
            long wait = reconnectAtNanos - System.nanoTime();
            if (failuresInARow > 0 && wait > 0) {
                return CompletableFuture.failedFuture(new ShardException(address, Status.Code.UNAVAILABLE,
                        "the Step stream failed " + failuresInARow + " time(s) in a row; reconnecting in "
                                + TimeUnit.NANOSECONDS.toMillis(wait) + " ms", null));
            }
            openStream();
            if (stream == null) { // the call failed while starting (counted by streamFailed)
                return CompletableFuture.failedFuture(new ShardException(address, Status.Code.UNAVAILABLE,
                        "cannot reach the shard (channel " + channel.getState(false) + ")", null));
            }
        }
        CompletableFuture<StepResponse> answer = new CompletableFuture<>();
        inFlight.add(new InFlight(request.getStepId(), answer));
        stream.onNext(request);
        return answer;
    }

    @Override
    public synchronized void resetStream(String reason) {
        abandon(new ShardException(address, Status.Code.DEADLINE_EXCEEDED, reason, null));
    }

    @Override
    public void close() {
        synchronized (this) {
            closed = true;
            abandon(new ShardException(address, Status.Code.UNAVAILABLE, "the client is closed", null));
        }
        channel.shutdownNow();
        try {
            channel.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void openStream() {
        long generation = ++streamGeneration;
        async.step(new ClientResponseObserver<StepRequest, StepResponse>() {
            @Override
            public void beforeStart(ClientCallStreamObserver<StepRequest> requests) {
                stream = requests; // runs inside async.step, under this client's lock
            }

            @Override
            public void onNext(StepResponse response) {
                answered(generation, response);
            }

            @Override
            public void onError(Throwable failure) {
                synchronized (ShardClient.this) {
                    streamFailed(generation, ShardException.of(address, failure));
                }
            }

            @Override
            public void onCompleted() {
                synchronized (ShardClient.this) {
                    streamFailed(generation, new ShardException(address, Status.Code.UNAVAILABLE,
                            "the shard ended the Step stream", null));
                }
            }
        });
    }

    private synchronized void answered(long generation, StepResponse response) {
        if (generation != streamGeneration || stream == null) {
            return; // an answer on a stream already given up
        }
        InFlight next = inFlight.poll();
        if (next == null || next.stepId() != response.getStepId()) {
            String expected = next == null ? "no step in flight" : "step " + next.stepId();
            ShardException broken = new ShardException(address, Status.Code.INTERNAL,
                    "answered step " + response.getStepId() + " but expected " + expected, null);
            if (next != null) {
                next.answer().completeExceptionally(broken);
            }
            abandon(broken);
            return;
        }
        failuresInARow = 0;
        next.answer().complete(response);
    }

    /** Fails the steps in flight with {@code failure}, then cancels the stream. Caller holds the lock. */
    private void abandon(ShardException failure) {
        ClientCallStreamObserver<StepRequest> current = stream;
        if (current != null) {
            streamFailed(streamGeneration, failure);
            current.cancel(failure.getMessage(), null);
        }
    }

    private long backoffNanos() {
        return Math.min(BACKOFF_MAX_NANOS, BACKOFF_FIRST_NANOS << Math.min(failuresInARow - 1, 16));
    }

    // Caller holds the lock.
    private void streamFailed(long generation, ShardException failure) {
        if (generation != streamGeneration || stream == null) {
            return;
        }
        stream = null;
        failuresInARow++;
        reconnectAtNanos = System.nanoTime() + backoffNanos();
        InFlight lost;
        while ((lost = inFlight.poll()) != null) {
            lost.answer().completeExceptionally(failure);
        }
    }
}
