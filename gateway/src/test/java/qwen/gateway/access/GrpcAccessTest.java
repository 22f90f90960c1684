package qwen.gateway.access;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.grpc.Attributes;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.Status;
import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The gRPC interceptor on fake calls: UNAUTHENTICATED without a valid key, health open, and the
 * per-key cap held from a Chat call's start to its end (closed or cancelled).
 */
class GrpcAccessTest {

    private final AccessControl access = new AccessControl(TestAccessConfig.of("sk-grpc").withCap(1), true);
    private final GrpcAccess interceptor = new GrpcAccess(access);
    /** The calls the service saw, as the interceptor passed them on. */
    private final List<ServerCall<String, String>> started = new ArrayList<>();
    private final ServerCallHandler<String, String> handler = (call, headers) -> {
        started.add(call);
        return new ServerCall.Listener<>() {
        };
    };

    @Test
    void callsWithoutAValidKeyEndUnauthenticated() {
        FakeCall none = new FakeCall("qwen.chat.v1.ChatService/GetModelInfo");
        interceptor.interceptCall(none, new Metadata(), handler);
        assertEquals(Status.Code.UNAUTHENTICATED, none.closed.getCode());

        FakeCall wrong = new FakeCall("qwen.chat.v1.ChatService/GetModelInfo");
        interceptor.interceptCall(wrong, key("sk-other"), handler);
        assertEquals(Status.Code.UNAUTHENTICATED, wrong.closed.getCode());
        assertEquals(0, started.size());

        FakeCall health = new FakeCall("grpc.health.v1.Health/Check");
        interceptor.interceptCall(health, new Metadata(), handler);
        assertEquals(1, started.size(), "health needs no key (probes)");

        FakeCall ok = new FakeCall("qwen.chat.v1.ChatService/GetModelInfo");
        interceptor.interceptCall(ok, key("sk-grpc"), handler);
        assertEquals(2, started.size());
        assertNull(ok.closed);
    }

    @Test
    void aKeysChatCallsAreCappedUntilTheyEnd() {
        FakeCall first = new FakeCall("qwen.chat.v1.ChatService/Chat");
        ServerCall.Listener<String> firstListener = interceptor.interceptCall(first, key("sk-grpc"), handler);
        ServerCall<String, String> firstAsSeen = started.getFirst();

        FakeCall second = new FakeCall("qwen.chat.v1.ChatService/Chat");
        interceptor.interceptCall(second, key("sk-grpc"), handler);
        assertEquals(Status.Code.RESOURCE_EXHAUSTED, second.closed.getCode());

        FakeCall unary = new FakeCall("qwen.chat.v1.ChatService/GetSession");
        interceptor.interceptCall(unary, key("sk-grpc"), handler);
        assertNull(unary.closed, "only generations count against the cap");

        firstAsSeen.close(Status.OK, new Metadata()); // the stream ended
        firstListener.onComplete();
        FakeCall third = new FakeCall("qwen.chat.v1.ChatService/Chat");
        ServerCall.Listener<String> thirdListener = interceptor.interceptCall(third, key("sk-grpc"), handler);
        assertNull(third.closed);

        thirdListener.onCancel(); // the client went away without a close
        FakeCall fourth = new FakeCall("qwen.chat.v1.ChatService/Chat");
        interceptor.interceptCall(fourth, key("sk-grpc"), handler);
        assertNull(fourth.closed);
    }

    private static Metadata key(String key) {
        Metadata metadata = new Metadata();
        metadata.put(GrpcAccess.AUTHORIZATION, "Bearer " + key);
        return metadata;
    }

    private static final class FakeCall extends ServerCall<String, String> {
        private final MethodDescriptor<String, String> method;
        Status closed;

        FakeCall(String fullName) {
            MethodDescriptor.Marshaller<String> marshaller = new MethodDescriptor.Marshaller<>() {
                @Override
                public InputStream stream(String value) {
                    return new ByteArrayInputStream(value.getBytes());
                }

                @Override
                public String parse(InputStream stream) {
                    return "";
                }
            };
            method = MethodDescriptor.<String, String>newBuilder().setType(MethodDescriptor.MethodType.UNKNOWN)
                    .setFullMethodName(fullName).setRequestMarshaller(marshaller).setResponseMarshaller(marshaller).build();
        }

        @Override
        public void request(int numMessages) {
        }

        @Override
        public void sendHeaders(Metadata headers) {
        }

        @Override
        public void sendMessage(String message) {
        }

        @Override
        public void close(Status status, Metadata trailers) {
            closed = status;
        }

        @Override
        public boolean isCancelled() {
            return false;
        }

        @Override
        public Attributes getAttributes() {
            return Attributes.EMPTY;
        }

        @Override
        public MethodDescriptor<String, String> getMethodDescriptor() {
            return method;
        }
    }
}
