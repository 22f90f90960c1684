package qwen.gateway.grpc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static qwen.gateway.grpc.ChatClient.assertStatus;
import static qwen.gateway.grpc.ChatClient.drain;
import static qwen.gateway.grpc.ChatClient.greedy;
import static qwen.gateway.grpc.ChatClient.replyIds;
import static qwen.gateway.grpc.ChatClient.replyText;

import io.grpc.Status;
import grpc.health.v1.HealthGrpc;
import grpc.health.v1.HealthOuterClass.HealthCheckRequest;
import grpc.health.v1.HealthOuterClass.HealthCheckResponse;
import io.grpc.reflection.v1.ServerReflectionGrpc;
import io.grpc.reflection.v1.ServerReflectionRequest;
import io.grpc.reflection.v1.ServerReflectionResponse;
import io.grpc.reflection.v1.ServiceResponse;
import io.grpc.stub.StreamObserver;
import java.util.concurrent.LinkedBlockingQueue;
import io.quarkus.test.common.QuarkusTestResource;
import io.quarkus.test.junit.QuarkusTest;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import qwen.proto.chat.v1.CancelOutcome;
import qwen.proto.chat.v1.CancelRequest;
import qwen.proto.chat.v1.ChatEvent;
import qwen.proto.chat.v1.ChatMessage;
import qwen.proto.chat.v1.ChatRequest;
import qwen.proto.chat.v1.CreateSessionRequest;
import qwen.proto.chat.v1.DeleteSessionRequest;
import qwen.proto.chat.v1.DetokenizeRequest;
import qwen.proto.chat.v1.FinishReason;
import qwen.proto.chat.v1.GenerationParams;
import qwen.proto.chat.v1.GetModelInfoRequest;
import qwen.proto.chat.v1.GetSessionRequest;
import qwen.proto.chat.v1.ListSessionsRequest;
import qwen.proto.chat.v1.ModelInfo;
import qwen.proto.chat.v1.Role;
import qwen.proto.chat.v1.Session;
import qwen.proto.chat.v1.TokenizeRequest;
import qwen.proto.chat.v1.TokenizeResponse;

/**
 * ChatService end to end: real gRPC on loopback into the gateway, which drives one real shard
 * process holding the random-weight TINY demo model (see {@link ShardResource}).
 */
@QuarkusTest
@QuarkusTestResource(value = ShardResource.class, restrictToAnnotatedClass = true)
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class ChatGrpcServiceTest {

    private ChatClient client;

    @BeforeEach
    void connect() {
        client = new ChatClient();
    }

    @AfterEach
    void disconnect() throws InterruptedException {
        client.close();
    }

    @Test
    void aSessionTurnStreamsStartedDeltasFinishedAndIsCommitted() {
        Session session = client.chat().createSession(CreateSessionRequest.newBuilder().setTitle("stream").build());
        try {
            List<ChatEvent> events = client.turn(ChatRequest.newBuilder().setSessionId(session.getSessionId())
                    .setUserMessage("Hello! Who are you?").setParams(greedy(12)).build());

            assertTrue(events.getFirst().hasStarted(), events.getFirst().toString());
            assertEquals(session.getSessionId(), events.getFirst().getStarted().getSessionId());
            assertFalse(events.getFirst().getStarted().getRequestId().isEmpty());
            assertTrue(events.getLast().hasFinished(), events.getLast().toString());
            events.subList(1, events.size() - 1).forEach(e -> assertTrue(e.hasDelta(), e.toString()));
            FinishReason reason = events.getLast().getFinished().getFinishReason();
            assertTrue(reason == FinishReason.FINISH_REASON_STOP || reason == FinishReason.FINISH_REASON_LENGTH,
                    reason.toString());
            assertEquals(events.getFirst().getStarted().getPromptTokens(),
                    events.getLast().getFinished().getUsage().getPromptTokens());

            Session after = get(session.getSessionId());
            assertEquals(2, after.getMessagesCount());
            assertEquals(2, after.getMessageCount());
            assertEquals(Role.ROLE_USER, after.getMessages(0).getRole());
            assertEquals("Hello! Who are you?", after.getMessages(0).getContent());
            assertEquals(Role.ROLE_ASSISTANT, after.getMessages(1).getRole());
            assertEquals(replyText(events).strip(), after.getMessages(1).getContent());
            assertEquals("", after.getRunningRequestId());
            assertTrue(after.getHistoryTokens() > after.getMessages(0).getTokenCount());
            assertTrue(client.chat().listSessions(ListSessionsRequest.getDefaultInstance()).getSessionsList().stream()
                    .anyMatch(s -> s.getSessionId().equals(session.getSessionId()) && s.getMessageCount() == 2));
        } finally {
            delete(session);
        }
    }

    @Test
    void aSecondTurnReusesTheKvAndMatchesAStatelessRequestWithTheWholeHistory() {
        Session session = client.chat().createSession(CreateSessionRequest.getDefaultInstance());
        try {
            List<ChatEvent> first = client.turn(ChatRequest.newBuilder().setSessionId(session.getSessionId())
                    .setUserMessage("Hi").setParams(greedy(8)).build());
            List<ChatEvent> second = client.turn(ChatRequest.newBuilder().setSessionId(session.getSessionId())
                    .setUserMessage("Tell me more.").setParams(greedy(8)).build());

            int firstPrompt = first.getFirst().getStarted().getPromptTokens();
            int cached = second.getFirst().getStarted().getCachedPromptTokens();
            assertTrue(cached >= firstPrompt, "cached " + cached + " < first prompt " + firstPrompt);
            assertEquals(cached, second.getLast().getFinished().getUsage().getCachedPromptTokens());

            String firstReply = get(session.getSessionId()).getMessages(1).getContent();
            List<ChatEvent> stateless = client.turn(ChatRequest.newBuilder()
                    .addMessages(message(Role.ROLE_USER, "Hi"))
                    .addMessages(message(Role.ROLE_ASSISTANT, firstReply))
                    .addMessages(message(Role.ROLE_USER, "Tell me more."))
                    .setParams(greedy(8)).build());

            assertEquals(0, stateless.getFirst().getStarted().getCachedPromptTokens());
            assertEquals(second.getFirst().getStarted().getPromptTokens(),
                    stateless.getFirst().getStarted().getPromptTokens());
            assertEquals(replyIds(stateless), replyIds(second));
            assertEquals(4, get(session.getSessionId()).getMessagesCount());
        } finally {
            delete(session);
        }
    }

    @Test
    void badInputIsRefusedWithTheFieldNamedAndChangesNothing() {
        Session session = client.chat().createSession(CreateSessionRequest.getDefaultInstance());
        try {
            client.turn(ChatRequest.newBuilder().setSessionId(session.getSessionId()).setUserMessage("Hi")
                    .setParams(greedy(4)).build());
            Session before = get(session.getSessionId());
            String id = session.getSessionId();

            assertStatus(Status.Code.NOT_FOUND, "no-such-session", () -> drain(client.chat().chat(
                    ChatRequest.newBuilder().setSessionId("no-such-session").setUserMessage("Hi").build())));
            assertStatus(Status.Code.INVALID_ARGUMENT, "messages", () -> drain(client.chat().chat(
                    ChatRequest.getDefaultInstance())));
            assertStatus(Status.Code.INVALID_ARGUMENT, "messages", () -> drain(client.chat().chat(
                    ChatRequest.newBuilder().setSessionId(id).setUserMessage("Hi")
                            .addMessages(message(Role.ROLE_USER, "Hi")).build())));
            assertStatus(Status.Code.INVALID_ARGUMENT, "user_message", () -> drain(client.chat().chat(
                    ChatRequest.newBuilder().setSessionId(id).build())));
            assertStatus(Status.Code.INVALID_ARGUMENT, "messages[0].role", () -> drain(client.chat().chat(
                    ChatRequest.newBuilder().addMessages(message(Role.ROLE_UNSPECIFIED, "Hi")).build())));
            assertStatus(Status.Code.INVALID_ARGUMENT, "max_new_tokens", () -> drain(client.chat().chat(
                    sessionTurn(id, GenerationParams.newBuilder().setMaxNewTokens(0)))));
            assertStatus(Status.Code.INVALID_ARGUMENT, "temperature", () -> drain(client.chat().chat(
                    sessionTurn(id, GenerationParams.newBuilder().setTemperature(-0.5f)))));
            assertStatus(Status.Code.INVALID_ARGUMENT, "top_p", () -> drain(client.chat().chat(
                    sessionTurn(id, GenerationParams.newBuilder().setTopP(0f)))));
            assertStatus(Status.Code.INVALID_ARGUMENT, "top_p", () -> drain(client.chat().chat(
                    sessionTurn(id, GenerationParams.newBuilder().setTopP(1.5f)))));
            String tooLong = " hello".repeat(9000); // one token per word: more than seq_length 8192
            assertStatus(Status.Code.INVALID_ARGUMENT, "max_sequence_tokens", () -> drain(client.chat().chat(
                    ChatRequest.newBuilder().setSessionId(id).setUserMessage(tooLong).build())));
            assertStatus(Status.Code.INVALID_ARGUMENT, "max_sequence_tokens", () -> drain(client.chat().chat(
                    ChatRequest.newBuilder().addMessages(message(Role.ROLE_USER, tooLong)).build())));
            assertStatus(Status.Code.INVALID_ARGUMENT, "token_ids[1]", () -> client.chat().detokenize(
                    DetokenizeRequest.newBuilder().addTokenIds(13048).addTokenIds(151851).build()));
            assertStatus(Status.Code.INVALID_ARGUMENT, "token_ids[0]", () -> client.chat().detokenize(
                    DetokenizeRequest.newBuilder().addTokenIds(-1).build()));
            assertStatus(Status.Code.INVALID_ARGUMENT, "page_token", () -> client.chat().listSessions(
                    ListSessionsRequest.newBuilder().setPageToken("garbage").build()));
            assertStatus(Status.Code.NOT_FOUND, "no-such-session", () -> client.chat().getSession(
                    GetSessionRequest.newBuilder().setSessionId("no-such-session").build()));

            assertEquals(before, get(id));
        } finally {
            delete(session);
        }
    }

    @Test
    void oneTurnRunsPerSessionAndDeletingTheSessionCancelsItAndFreesItsKv() throws InterruptedException {
        Session session = client.chat().createSession(CreateSessionRequest.getDefaultInstance());
        var stream = client.chat().chat(ChatRequest.newBuilder().setSessionId(session.getSessionId())
                .setUserMessage("Write a long story.").setRequestId("long-turn").setParams(greedy(4000)).build());
        assertTrue(stream.next().hasStarted());
        assertTrue(stream.next().hasDelta());

        assertEquals("long-turn", get(session.getSessionId()).getRunningRequestId());
        assertStatus(Status.Code.FAILED_PRECONDITION, "long-turn", () -> drain(client.chat().chat(
                ChatRequest.newBuilder().setSessionId(session.getSessionId()).setUserMessage("Hi").build())));
        assertStatus(Status.Code.ALREADY_EXISTS, "long-turn", () -> drain(client.chat().chat(
                ChatRequest.newBuilder().addMessages(message(Role.ROLE_USER, "Hi")).setRequestId("long-turn")
                        .build())));

        delete(session);
        ChatEvent last = null;
        while (stream.hasNext()) {
            last = stream.next();
        }
        assertEquals(FinishReason.FINISH_REASON_CANCELLED, last.getFinished().getFinishReason());
        awaitNoKvOnTheShard();
    }

    @Test
    void cancelledStreamsLeaveNoKvOnTheShard() throws Exception {
        long started = System.nanoTime();
        CancelStorm.Result result = new CancelStorm(client, 200, 8).run();
        assertEquals(200, result.sawDelta() + result.endedBeforeDelta(), result.toString());
        assertEquals("", result.firstUnexpectedError(), result.toString());
        assertTrue(result.sawDelta() >= 150, "too few streams reached a Delta to be cancelled: " + result);
        assertTrue(System.nanoTime() - started < TimeUnit.MINUTES.toNanos(3), "took over 3 minutes");

        awaitNoKvOnTheShard();
    }

    /** Every test deletes its sessions, so between tests the shard holds no KV at all. */
    private void awaitNoKvOnTheShard() throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        var info = client.shardInfo();
        while ((info.getSequencesHeld() != 0 || info.getKvBytesInUse() != 0) && System.nanoTime() < deadline) {
            Thread.sleep(100);
            info = client.shardInfo();
        }
        String held = "sequences_held " + info.getSequencesHeld() + ", kv_bytes_in_use " + info.getKvBytesInUse();
        assertEquals(0, info.getSequencesHeld(), held);
        assertEquals(0, info.getKvBytesInUse(), held);
    }

    @Test
    void cancelByRequestIdEndsTheStreamWithCancelled() {
        var unknown = client.chat().cancel(CancelRequest.newBuilder().setRequestId("nothing-runs").build());
        assertFalse(unknown.getFound());
        assertEquals(CancelOutcome.CANCEL_OUTCOME_NOT_FOUND, unknown.getOutcome());
        assertStatus(Status.Code.INVALID_ARGUMENT, "request_id", () -> client.chat().cancel(
                CancelRequest.getDefaultInstance()));
        var stream = client.chat().chat(ChatRequest.newBuilder().addMessages(message(Role.ROLE_USER, "Hi"))
                .setRequestId("cancel-me").setParams(greedy(4000)).build());
        assertTrue(stream.next().hasStarted());
        assertTrue(stream.next().hasDelta());
        var cancelled = client.chat().cancel(CancelRequest.newBuilder().setRequestId("cancel-me").build());
        assertTrue(cancelled.getFound());
        assertEquals(CancelOutcome.CANCEL_OUTCOME_CANCELLED, cancelled.getOutcome());
        ChatEvent last = null;
        while (stream.hasNext()) {
            last = stream.next();
        }
        assertEquals(FinishReason.FINISH_REASON_CANCELLED, last.getFinished().getFinishReason());
    }

    @Test
    void tokenizeBuildsTheChatMlPromptAndModelInfoDescribesTheDemoModel() {
        TokenizeResponse prompt = client.chat().tokenize(TokenizeRequest.newBuilder()
                .addMessages(message(Role.ROLE_USER, "你好")).build());
        // SPEC 5.2: query "你好", no history, default system prompt.
        assertEquals(List.of(151644, 8948, 198, 2610, 525, 264, 10950, 17847, 13, 151645, 198, 151644, 872, 198,
                108386, 151645, 198, 151644, 77091, 198), prompt.getTokenIdsList());
        assertEquals(20, prompt.getTokenCount());
        assertEquals(List.of(13048, 220, 151645), client.chat().tokenize(TokenizeRequest.newBuilder()
                .setText("Hi <|im_end|>").setAllowSpecial(true).build()).getTokenIdsList());
        assertEquals(List.of(13048, 82639, 318, 6213, 91, 29), client.chat().tokenize(TokenizeRequest.newBuilder()
                .setText("Hi <|im_end|>").build()).getTokenIdsList());
        assertStatus(Status.Code.INVALID_ARGUMENT, "system_prompt", () -> client.chat().tokenize(
                TokenizeRequest.newBuilder().setSystemPrompt("x").addMessages(message(Role.ROLE_SYSTEM, "y"))
                        .addMessages(message(Role.ROLE_USER, "Hi")).build()));
        assertEquals("Hi<|im_end|>", client.chat().detokenize(DetokenizeRequest.newBuilder()
                .addTokenIds(13048).addTokenIds(151645).build()).getText());

        ModelInfo info = client.chat().getModelInfo(GetModelInfoRequest.getDefaultInstance());
        assertTrue(info.getRandomWeights());
        assertEquals(8192, info.getSeqLength());
        assertTrue(info.getMaxSequenceTokens() > 0 && info.getMaxSequenceTokens() <= 8192, info.toString());
        assertEquals(6144, info.getMaxWindowSize());
        assertEquals(151851, info.getTokenizerVocabSize());
        assertEquals(512, info.getDefaultParams().getMaxNewTokens());
        assertEquals(0.8f, info.getDefaultParams().getTopP());
        assertEquals(1, info.getShardsCount());
        assertEquals(info.getNumLayers(), info.getShards(0).getEndLayer());
        assertEquals(1, info.getPipelinesCount(), "one pipeline replica");
        assertTrue(info.getPipelines(0).getServing(), info.toString());
        assertEquals(1, info.getPipelines(0).getShardCount());
    }

    @Test
    void healthIsServingAndReflectionListsTheService() throws InterruptedException {
        HealthCheckResponse health = HealthGrpc.newBlockingStub(client.gatewayChannel)
                .withDeadlineAfter(30, TimeUnit.SECONDS)
                .check(HealthCheckRequest.newBuilder().setService("qwen.chat.v1.ChatService").build());
        assertEquals(HealthCheckResponse.ServingStatus.SERVING, health.getStatus());

        LinkedBlockingQueue<Object> answers = new LinkedBlockingQueue<>();
        StreamObserver<ServerReflectionRequest> requests = ServerReflectionGrpc.newStub(client.gatewayChannel)
                .withDeadlineAfter(30, TimeUnit.SECONDS)
                .serverReflectionInfo(new StreamObserver<>() {
                    @Override
                    public void onNext(ServerReflectionResponse response) {
                        answers.add(response);
                    }

                    @Override
                    public void onError(Throwable t) {
                        answers.add(t);
                    }

                    @Override
                    public void onCompleted() {
                    }
                });
        requests.onNext(ServerReflectionRequest.newBuilder().setListServices("").build());
        requests.onCompleted();
        Object answer = answers.poll(30, TimeUnit.SECONDS);
        assertTrue(answer instanceof ServerReflectionResponse, String.valueOf(answer));
        assertTrue(((ServerReflectionResponse) answer).getListServicesResponse().getServiceList().stream()
                .map(ServiceResponse::getName).anyMatch("qwen.chat.v1.ChatService"::equals), answer.toString());
    }

    private ChatRequest sessionTurn(String sessionId, GenerationParams.Builder params) {
        return ChatRequest.newBuilder().setSessionId(sessionId).setUserMessage("Again").setParams(params).build();
    }

    private Session get(String sessionId) {
        return client.chat().getSession(GetSessionRequest.newBuilder().setSessionId(sessionId).build());
    }

    private void delete(Session session) {
        client.chat().deleteSession(DeleteSessionRequest.newBuilder().setSessionId(session.getSessionId()).build());
        assertStatus(Status.Code.NOT_FOUND, session.getSessionId(), () -> get(session.getSessionId()));
    }

    private static ChatMessage message(Role role, String content) {
        return ChatMessage.newBuilder().setRole(role).setContent(content).build();
    }
}
