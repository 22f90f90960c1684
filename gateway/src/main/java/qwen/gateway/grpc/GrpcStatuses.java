package qwen.gateway.grpc;

import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusException;
import io.grpc.StatusRuntimeException;
import java.util.concurrent.CancellationException;
import org.jboss.logging.Logger;
import qwen.gateway.chat.GatewayException;

/**
 * The one mapping from the gateway's failures to gRPC statuses: a {@link GatewayException} becomes
 * the status of the same name with its message; anything else is a server fault, INTERNAL with
 * where it happened, and logged. Nothing becomes UNKNOWN.
 *
 * <p>RESOURCE_EXHAUSTED and UNAVAILABLE carry a {@code retry-after} trailer, seconds to wait before
 * retrying, as HTTP's Retry-After does for 429 and 503.
 */
final class GrpcStatuses {

    private static final Logger LOG = Logger.getLogger(GrpcStatuses.class);

    /** Trailer key: seconds a client should wait before it retries (decimal ASCII). */
    static final Metadata.Key<String> RETRY_AFTER = Metadata.Key.of("retry-after", Metadata.ASCII_STRING_MARSHALLER);

    /** Seconds to wait after RESOURCE_EXHAUSTED: the queue drains within a few decode steps. */
    static final int RETRY_AFTER_FULL_SECONDS = 1;
    /** Seconds to wait after UNAVAILABLE: a shard reconnecting or loading its weights. */
    static final int RETRY_AFTER_UNAVAILABLE_SECONDS = 5;

    private GrpcStatuses() {
    }

    static StatusRuntimeException toStatus(Throwable failure) {
        return switch (failure) {
            case StatusRuntimeException status -> status;
            case StatusException status -> new StatusRuntimeException(status.getStatus(), status.getTrailers());
            case GatewayException gateway -> status(gateway.kind()).withDescription(gateway.getMessage())
                    .asRuntimeException(trailers(gateway.kind()));
            case CancellationException cancelled -> Status.CANCELLED.withDescription(cancelled.getMessage())
                    .asRuntimeException();
            default -> {
                LOG.error("gRPC call failed", failure);
                yield Status.INTERNAL.withDescription("gateway fault: " + failure).withCause(failure)
                        .asRuntimeException();
            }
        };
    }

    private static Metadata trailers(GatewayException.Kind kind) {
        Metadata trailers = new Metadata();
        switch (kind) {
            case RESOURCE_EXHAUSTED -> trailers.put(RETRY_AFTER, Integer.toString(RETRY_AFTER_FULL_SECONDS));
            case UNAVAILABLE -> trailers.put(RETRY_AFTER, Integer.toString(RETRY_AFTER_UNAVAILABLE_SECONDS));
            default -> {
            }
        }
        return trailers;
    }

    static Status status(GatewayException.Kind kind) {
        return switch (kind) {
            case INVALID_ARGUMENT -> Status.INVALID_ARGUMENT;
            case NOT_FOUND -> Status.NOT_FOUND;
            case ALREADY_EXISTS -> Status.ALREADY_EXISTS;
            case FAILED_PRECONDITION -> Status.FAILED_PRECONDITION;
            case RESOURCE_EXHAUSTED -> Status.RESOURCE_EXHAUSTED;
            case UNAVAILABLE -> Status.UNAVAILABLE;
            case INTERNAL -> Status.INTERNAL;
        };
    }
}
