package qwen.service.grpc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.fail;

import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.eclipse.microprofile.config.ConfigProvider;
import qwen.proto.shard.v1.SequenceStep;
import qwen.proto.shard.v1.ShardServiceGrpc;
import qwen.proto.shard.v1.StepRequest;
import qwen.proto.shard.v1.StepResponse;

/** A plain grpc-java client of the shard under test, as the gateway would be: a real TCP channel. */
final class ShardClient implements AutoCloseable {

    private static final int TIMEOUT_S = 30;

    final ManagedChannel channel;
    final ShardServiceGrpc.ShardServiceBlockingStub blocking;
    final ShardServiceGrpc.ShardServiceStub async;

    ShardClient() {
        // Once the server listens, Quarkus publishes its real port (the test port is 0: any free one) under this key.
        int port = ConfigProvider.getConfig().getValue("quarkus.grpc.server.port", Integer.class);
        if (port <= 0) {
            fail("the gRPC test server's port is unknown: quarkus.grpc.server.port=" + port);
        }
        channel = ManagedChannelBuilder.forAddress("localhost", port).usePlaintext().maxInboundMessageSize(64 << 20).build();
        blocking = ShardServiceGrpc.newBlockingStub(channel).withDeadlineAfter(TIMEOUT_S, TimeUnit.SECONDS);
        async = ShardServiceGrpc.newStub(channel);
    }

    /** Opens a Step stream. */
    StepCall step() {
        return new StepCall(async);
    }

    /** One Step request on a fresh stream; fails the test unless exactly one response comes back. */
    StepResponse stepOnce(SequenceStep... sequences) {
        try (StepCall call = step()) {
            call.send(StepRequest.newBuilder().setStepId(1).addAllSequences(List.of(sequences)).build());
            return call.next();
        }
    }

    @Override
    public void close() throws InterruptedException {
        channel.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
    }

    /** A bidirectional Step call: responses are queued as they arrive; the call's end is a future status. */
    static final class StepCall implements AutoCloseable {
        private final BlockingQueue<StepResponse> responses = new LinkedBlockingQueue<>();
        private final CompletableFuture<Status> end = new CompletableFuture<>();
        private final StreamObserver<StepRequest> requests;

        StepCall(ShardServiceGrpc.ShardServiceStub stub) {
            requests = stub.step(new StreamObserver<>() {
                @Override
                public void onNext(StepResponse value) {
                    responses.add(value);
                }

                @Override
                public void onError(Throwable t) {
                    end.complete(Status.fromThrowable(t));
                }

                @Override
                public void onCompleted() {
                    end.complete(Status.OK);
                }
            });
        }

        void send(StepRequest request) {
            requests.onNext(request);
        }

        /** The next response; fails the test when the call ends or nothing arrives in time. */
        StepResponse next() {
            try {
                StepResponse r = responses.poll(TIMEOUT_S, TimeUnit.SECONDS);
                if (r == null) {
                    fail("no StepResponse within " + TIMEOUT_S + " s; call ended with " + end.getNow(null));
                }
                return r;
            } catch (InterruptedException e) {
                throw new AssertionError(e);
            }
        }

        /** How the call ended, waiting for it. */
        Status status() {
            try {
                return end.get(TIMEOUT_S, TimeUnit.SECONDS);
            } catch (InterruptedException | ExecutionException | TimeoutException e) {
                throw new AssertionError("the Step call did not end: " + e, e);
            }
        }

        /** Asserts the call ended with {@code code} and returns the status description. */
        String expectEnd(Status.Code code) {
            Status s = status();
            assertEquals(code, s.getCode(), "status of the Step call: " + s);
            assertNotNull(s.getDescription(), "a status without a description");
            return s.getDescription();
        }

        /** Half-closes the call (the gateway has nothing more to send). */
        @Override
        public void close() {
            if (!end.isDone()) {
                requests.onCompleted();
            }
        }
    }
}
