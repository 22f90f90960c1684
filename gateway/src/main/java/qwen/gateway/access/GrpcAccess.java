package qwen.gateway.access;

import io.grpc.ForwardingServerCall;
import io.grpc.ForwardingServerCallListener;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.quarkus.grpc.GlobalInterceptor;
import jakarta.enterprise.context.ApplicationScoped;
import org.jboss.logging.Logger;

/**
 * API keys on the gRPC port: every service but grpc.health.v1.Health (for probes) needs the
 * metadata {@code authorization: Bearer <key>} when keys are on, else the call ends with
 * UNAUTHENTICATED. A key's Chat calls count against its cap until the call ends.
 */
@GlobalInterceptor
@ApplicationScoped
class GrpcAccess implements ServerInterceptor {

    private static final Logger LOG = Logger.getLogger(GrpcAccess.class);
    static final Metadata.Key<String> AUTHORIZATION = Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
    private static final String HEALTH = "grpc.health.v1.Health";
    private static final String CHAT = "qwen.chat.v1.ChatService/Chat";

    private final AccessControl access;

    GrpcAccess(AccessControl access) {
        this.access = access;
    }

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
        if (!access.enabled() || HEALTH.equals(call.getMethodDescriptor().getServiceName())) {
            return next.startCall(call, headers);
        }
        AccessControl.Verdict verdict = access.check(headers.get(AUTHORIZATION));
        if (!verdict.allowed()) {
            LOG.debugf("refused %s: %s API key", call.getMethodDescriptor().getFullMethodName(), verdict.refusal());
            call.close(Status.UNAUTHENTICATED.withDescription(verdict.message()), new Metadata());
            return new ServerCall.Listener<>() {
            };
        }
        if (!CHAT.equals(call.getMethodDescriptor().getFullMethodName())) {
            return next.startCall(call, headers);
        }
        ConcurrencyCap.Permit permit = access.cap().tryAcquire(verdict.caller());
        if (permit == null) {
            call.close(Status.RESOURCE_EXHAUSTED.withDescription(access.capMessage(verdict.caller())), new Metadata());
            return new ServerCall.Listener<>() {
            };
        }
        ServerCall<Q, R> releasing = new ForwardingServerCall.SimpleForwardingServerCall<>(call) {
            @Override
            public void close(Status status, Metadata trailers) {
                permit.close();
                super.close(status, trailers);
            }
        };
        ServerCall.Listener<Q> listener;
        try {
            listener = next.startCall(releasing, headers);
        } catch (RuntimeException e) {
            permit.close();
            throw e;
        }
        return new ForwardingServerCallListener.SimpleForwardingServerCallListener<>(listener) {
            @Override
            public void onCancel() {
                permit.close();
                super.onCancel();
            }

            @Override
            public void onComplete() {
                permit.close();
                super.onComplete();
            }
        };
    }
}
