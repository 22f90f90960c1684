package qwen.gateway.grpc;

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
 */
final class GrpcStatuses {

    private static final Logger LOG = Logger.getLogger(GrpcStatuses.class);

    private GrpcStatuses() {
    }

    static StatusRuntimeException toStatus(Throwable failure) {
        return switch (failure) {
            case StatusRuntimeException status -> status;
            case StatusException status -> new StatusRuntimeException(status.getStatus(), status.getTrailers());
            case GatewayException gateway -> status(gateway.kind()).withDescription(gateway.getMessage())
                    .asRuntimeException();
            case CancellationException cancelled -> Status.CANCELLED.withDescription(cancelled.getMessage())
                    .asRuntimeException();
            default -> {
                LOG.error("gRPC call failed", failure);
                yield Status.INTERNAL.withDescription("gateway fault: " + failure).withCause(failure)
                        .asRuntimeException();
            }
        };
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
