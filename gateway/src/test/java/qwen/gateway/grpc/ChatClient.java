package qwen.gateway.grpc;

import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.eclipse.microprofile.config.ConfigProvider;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.function.Executable;
import qwen.proto.chat.v1.ChatEvent;
import qwen.proto.chat.v1.ChatRequest;
import qwen.proto.chat.v1.ChatServiceGrpc;
import qwen.proto.chat.v1.Delta;
import qwen.proto.chat.v1.GenerationParams;
import qwen.proto.shard.v1.InfoRequest;
import qwen.proto.shard.v1.ShardInfo;
import qwen.proto.shard.v1.ShardServiceGrpc;

/** Plain grpc-java clients for the end-to-end tests: the gateway's ChatService and the shard's Info. */
final class ChatClient implements AutoCloseable {

    static final long DEADLINE_SECONDS = 120;

    final ManagedChannel gatewayChannel;
    final ManagedChannel shardChannel;

    ChatClient() {
        int port = ConfigProvider.getConfig().getValue("quarkus.grpc.server.test-port", Integer.class);
        gatewayChannel = ManagedChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().build();
        String shard = ConfigProvider.getConfig().getValue("qwen.gateway.shards", String.class);
        shardChannel = ManagedChannelBuilder.forTarget(shard).usePlaintext().build();
    }

    ChatServiceGrpc.ChatServiceBlockingStub chat() {
        return ChatServiceGrpc.newBlockingStub(gatewayChannel).withDeadlineAfter(DEADLINE_SECONDS, TimeUnit.SECONDS);
    }

    ChatServiceGrpc.ChatServiceStub async() {
        return ChatServiceGrpc.newStub(gatewayChannel).withDeadlineAfter(DEADLINE_SECONDS, TimeUnit.SECONDS);
    }

    ShardInfo shardInfo() {
        return ShardServiceGrpc.newBlockingStub(shardChannel).withDeadlineAfter(30, TimeUnit.SECONDS)
                .info(InfoRequest.getDefaultInstance());
    }

    /** Runs one Chat call to its end and returns every event. */
    List<ChatEvent> turn(ChatRequest request) {
        List<ChatEvent> events = new ArrayList<>();
        Iterator<ChatEvent> stream = chat().chat(request);
        stream.forEachRemaining(events::add);
        return events;
    }

    /** Greedy, short replies: the same prompt gives the same ids. */
    static GenerationParams greedy(int maxNewTokens) {
        return GenerationParams.newBuilder().setGreedy(true).setMaxNewTokens(maxNewTokens).build();
    }

    static List<Integer> replyIds(List<ChatEvent> events) {
        List<Integer> ids = new ArrayList<>();
        events.stream().filter(ChatEvent::hasDelta).map(ChatEvent::getDelta).map(Delta::getTokenIdsList)
                .forEach(ids::addAll);
        return ids;
    }

    static String replyText(List<ChatEvent> events) {
        StringBuilder text = new StringBuilder();
        events.stream().filter(ChatEvent::hasDelta).forEach(e -> text.append(e.getDelta().getText()));
        return text.toString();
    }

    /** Asserts the call fails with {@code code} and a message that contains {@code mentions}. */
    static StatusRuntimeException assertStatus(Status.Code code, String mentions, Executable call) {
        StatusRuntimeException e = Assertions.assertThrows(StatusRuntimeException.class, call);
        Assertions.assertEquals(code, e.getStatus().getCode(), () -> "status " + e.getStatus());
        String description = e.getStatus().getDescription();
        Assertions.assertNotNull(description, "the status has no message");
        Assertions.assertTrue(description.contains(mentions),
                () -> "message '" + description + "' does not mention '" + mentions + "'");
        return e;
    }

    /** Drains a server stream: server-streaming errors surface while iterating. */
    static void drain(Iterator<ChatEvent> stream) {
        stream.forEachRemaining(event -> { });
    }

    @Override
    public void close() throws InterruptedException {
        gatewayChannel.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
        shardChannel.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
    }
}
