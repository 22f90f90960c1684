package qwen.gateway.grpc;

import io.quarkus.grpc.GrpcService;
import io.smallrye.mutiny.Multi;
import io.smallrye.mutiny.Uni;
import io.smallrye.mutiny.infrastructure.Infrastructure;
import jakarta.inject.Inject;
import java.util.Arrays;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.Executor;
import java.util.function.Supplier;
import qwen.gateway.chat.CancelOutcome;
import qwen.gateway.chat.Conversation;
import qwen.gateway.chat.GatewayException;
import qwen.gateway.chat.GenerationDefaults;
import qwen.gateway.chat.GenerationEvent;
import qwen.gateway.chat.GenerationRequest;
import qwen.gateway.chat.GenerationSettings;
import qwen.gateway.chat.Generations;
import qwen.gateway.chat.PromptBuilder;
import qwen.gateway.session.SequenceLimits;
import qwen.gateway.session.SessionPage;
import qwen.gateway.session.SessionService;
import qwen.gateway.shard.PipelineService;
import qwen.gateway.tokenizer.QwenTokenizer;
import qwen.gateway.tokenizer.SpecialTokens;
import qwen.proto.chat.v1.CancelRequest;
import qwen.proto.chat.v1.CancelResponse;
import qwen.proto.chat.v1.ChatEvent;
import qwen.proto.chat.v1.ChatRequest;
import qwen.proto.chat.v1.ChatService;
import qwen.proto.chat.v1.CreateSessionRequest;
import qwen.proto.chat.v1.DeleteSessionRequest;
import qwen.proto.chat.v1.DeleteSessionResponse;
import qwen.proto.chat.v1.DetokenizeRequest;
import qwen.proto.chat.v1.DetokenizeResponse;
import qwen.proto.chat.v1.GetModelInfoRequest;
import qwen.proto.chat.v1.GetSessionRequest;
import qwen.proto.chat.v1.ListSessionsRequest;
import qwen.proto.chat.v1.ListSessionsResponse;
import qwen.proto.chat.v1.ModelInfo;
import qwen.proto.chat.v1.Session;
import qwen.proto.chat.v1.TokenizeRequest;
import qwen.proto.chat.v1.TokenizeResponse;

/**
 * The public qwen.chat.v1.ChatService over gRPC: each method translates the request, delegates to
 * the session service or the engine, and translates the answer. Every method's work (file I/O,
 * tokenization) runs on the worker pool, never on the event loop; failures become gRPC statuses
 * through {@link GrpcStatuses}.
 */
@GrpcService
public class ChatGrpcService implements ChatService {

    private static final int DEFAULT_PAGE_SIZE = 50;
    private static final int MAX_PAGE_SIZE = 200;

    private final SessionService sessions;
    private final Generations generations;
    private final PromptBuilder prompts;
    private final QwenTokenizer tokenizer;
    private final GenerationDefaults defaults;
    private final PipelineService pipelines;
    private final SequenceLimits limits;
    private final ChatReplies replies;
    private final Executor workers = Infrastructure.getDefaultWorkerPool();

    @Inject
    public ChatGrpcService(SessionService sessions, Generations generations, PromptBuilder prompts,
                           QwenTokenizer tokenizer, GenerationDefaults defaults, PipelineService pipelines,
                           SequenceLimits limits) {
        this.sessions = sessions;
        this.generations = generations;
        this.prompts = prompts;
        this.tokenizer = tokenizer;
        this.defaults = defaults;
        this.pipelines = pipelines;
        this.limits = limits;
        this.replies = new ChatReplies(tokenizer);
    }

    @Override
    public Multi<ChatEvent> chat(ChatRequest request) {
        return Multi.createFrom().deferred(() -> {
                    ChatRequests.checkShape(request);
                    String modelId = pipelines.modelCard().modelId();
                    String requestId = request.getRequestId().isEmpty()
                            ? UUID.randomUUID().toString() : request.getRequestId();
                    return turn(request, requestId).map(event -> replies.event(event, modelId));
                })
                .runSubscriptionOn(workers)
                .onFailure().transform(GrpcStatuses::toStatus);
    }

    /** A session turn, or a stateless one whose KV is freed when it ends. */
    private Multi<GenerationEvent> turn(ChatRequest request, String requestId) {
        String systemOverride = request.hasSystemPrompt() ? request.getSystemPrompt() : null;
        if (!request.getSessionId().isEmpty()) {
            return sessions.chat(request.getSessionId(), request.getUserMessage(), systemOverride,
                    ChatRequests.params(request.getParams()), requestId);
        }
        Conversation conversation = Conversation.fromMessages(
                ChatRequests.messages(request.getMessagesList(), request.hasSystemPrompt()), systemOverride);
        GenerationSettings settings = GenerationSettings.resolve(ChatRequests.params(request.getParams()), defaults);
        int[] promptIds = prompts.build(conversation);
        limits.checkPrompt("messages", promptIds.length);
        return generations.generate(new GenerationRequest(requestId, null, "stateless-" + UUID.randomUUID(), false,
                promptIds, settings));
    }

    @Override
    public Uni<CancelResponse> cancel(CancelRequest request) {
        return blocking(() -> {
            if (request.getRequestId().isEmpty()) {
                throw GatewayException.invalid("request_id: required");
            }
            CancelOutcome outcome = generations.cancelAnywhere(request.getRequestId());
            return CancelResponse.newBuilder().setFound(outcome == CancelOutcome.CANCELLED)
                    .setOutcome(switch (outcome) {
                        case CANCELLED -> qwen.proto.chat.v1.CancelOutcome.CANCEL_OUTCOME_CANCELLED;
                        case NOT_FOUND -> qwen.proto.chat.v1.CancelOutcome.CANCEL_OUTCOME_NOT_FOUND;
                        case ALREADY_FINISHED -> qwen.proto.chat.v1.CancelOutcome.CANCEL_OUTCOME_ALREADY_FINISHED;
                    }).build();
        });
    }

    @Override
    public Uni<Session> createSession(CreateSessionRequest request) {
        return blocking(() -> replies.session(sessions.create(
                request.hasSystemPrompt() ? request.getSystemPrompt() : null,
                request.getTitle(), request.getMetadataMap()), true));
    }

    @Override
    public Uni<Session> getSession(GetSessionRequest request) {
        return blocking(() -> replies.session(sessions.get(requiredSessionId(request.getSessionId())), true));
    }

    @Override
    public Uni<ListSessionsResponse> listSessions(ListSessionsRequest request) {
        return blocking(() -> {
            int size = request.getPageSize() == 0 ? DEFAULT_PAGE_SIZE
                    : (int) Math.min(Integer.toUnsignedLong(request.getPageSize()), MAX_PAGE_SIZE);
            SessionPage page = sessions.list(size, request.getPageToken());
            ListSessionsResponse.Builder out = ListSessionsResponse.newBuilder()
                    .setNextPageToken(page.nextPageToken());
            page.sessions().forEach(session -> out.addSessions(replies.session(sessions.state(session), false)));
            return out.build();
        });
    }

    @Override
    public Uni<DeleteSessionResponse> deleteSession(DeleteSessionRequest request) {
        return blocking(() -> {
            sessions.delete(requiredSessionId(request.getSessionId()));
            return DeleteSessionResponse.getDefaultInstance();
        });
    }

    @Override
    public Uni<TokenizeResponse> tokenize(TokenizeRequest request) {
        return blocking(() -> {
            int[] ids;
            if (request.getMessagesCount() > 0) {
                if (!request.getText().isEmpty()) {
                    throw GatewayException.invalid("text, messages: set one, not both");
                }
                String system = request.hasSystemPrompt() ? request.getSystemPrompt() : null;
                ids = prompts.build(Conversation.fromMessages(
                        ChatRequests.messages(request.getMessagesList(), request.hasSystemPrompt()), system));
            } else {
                ids = tokenizer.encode(request.getText(), request.getAllowSpecial() ? SpecialTokens.ALL : SpecialTokens.NONE);
            }
            TokenizeResponse.Builder out = TokenizeResponse.newBuilder().setTokenCount(ids.length);
            Arrays.stream(ids).forEach(out::addTokenIds);
            return out.build();
        });
    }

    @Override
    public Uni<DetokenizeResponse> detokenize(DetokenizeRequest request) {
        return blocking(() -> {
            List<Integer> ids = request.getTokenIdsList();
            int vocabulary = tokenizer.vocabularySize();
            for (int i = 0; i < ids.size(); i++) {
                if (ids.get(i) < 0 || ids.get(i) >= vocabulary) {
                    throw GatewayException.invalid("token_ids[" + i + "]: " + ids.get(i) + " is outside the"
                            + " tokenizer's vocabulary [0, " + vocabulary + ")");
                }
            }
            int[] array = ids.stream().mapToInt(Integer::intValue).toArray();
            return DetokenizeResponse.newBuilder()
                    .setText(tokenizer.decode(array, request.getSkipSpecialTokens())).build();
        });
    }

    @Override
    public Uni<ModelInfo> getModelInfo(GetModelInfoRequest request) {
        return blocking(() -> ModelInfos.modelInfo(pipelines.modelCard(), pipelines.liveReplicas(), defaults, limits.maxSequenceTokens(),
                tokenizer.vocabularySize()));
    }

    private static String requiredSessionId(String sessionId) {
        if (sessionId.isEmpty()) {
            throw GatewayException.invalid("session_id: required");
        }
        return sessionId;
    }

    private <T> Uni<T> blocking(Supplier<T> work) {
        return Uni.createFrom().item(work).runSubscriptionOn(workers)
                .onFailure().transform(GrpcStatuses::toStatus);
    }
}
