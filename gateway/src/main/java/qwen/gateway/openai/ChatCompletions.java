package qwen.gateway.openai;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.smallrye.mutiny.Multi;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import java.time.Instant;
import java.util.List;
import org.jboss.resteasy.reactive.RestMulti;
import qwen.gateway.chat.ChatMessage;
import qwen.gateway.chat.Conversation;
import qwen.gateway.chat.GenerationDefaults;
import qwen.gateway.chat.GenerationEvent;
import qwen.gateway.chat.GenerationRequest;
import qwen.gateway.chat.GenerationSettings;
import qwen.gateway.chat.Generations;
import qwen.gateway.chat.PromptBuilder;
import qwen.gateway.chat.RequestedParams;
import qwen.gateway.session.Session;
import qwen.gateway.session.SessionService;
import qwen.gateway.shard.ModelCard;
import qwen.gateway.shard.PipelineService;
import qwen.gateway.tokenizer.QwenTokenizer;

/**
 * {@code POST /v1/chat/completions}: checks the request, builds the ChatML prompt and starts the
 * generation, stateless or on a server-side session.
 *
 * <p>Session binding: with {@code X-Session-Id} (or {@code session_id}) only the last message is
 * used, as the session's new user turn; the session's stored system prompt and history make the rest
 * of the prompt, and the earlier messages of the request are checked for shape but otherwise
 * ignored. The turn is committed to the session when it ends with "stop" or "length".
 *
 * <p>Everything that can refuse the request is checked before the engine or the session is
 * touched, so bad input changes no state. Blocking (tokenization, session reads): call it off the
 * event loop.
 */
@ApplicationScoped
public class ChatCompletions {

    private final Generations generations;
    private final SessionService sessions;
    private final PromptBuilder prompts;
    private final PipelineService pipelines;
    private final GenerationDefaults defaults;
    private final LogprobsFormat logprobs;
    private final GenerationResponses responses;

    @Inject
    ChatCompletions(Generations generations, SessionService sessions, PromptBuilder prompts, PipelineService pipelines,
                    GenerationDefaults defaults, QwenTokenizer tokenizer, ObjectMapper json) {
        this.generations = generations;
        this.sessions = sessions;
        this.prompts = prompts;
        this.pipelines = pipelines;
        this.defaults = defaults;
        this.logprobs = new LogprobsFormat(tokenizer);
        this.responses = new GenerationResponses(json);
    }

    /**
     * @param sessionHeader the {@code X-Session-Id} header, or null
     * @param requestIdHeader the {@code X-Request-Id} header, or null
     */
    RestMulti<String> create(ChatCompletionRequest request, String sessionHeader, String requestIdHeader) {
        RequestChecks.body(request, "\"messages\"");
        long created = Instant.now().getEpochSecond();
        RequestedParams params = OpenAiParams.chat(request);
        List<ChatMessage> messages = OpenAiMessages.read(request.messages());
        String sessionId = RequestChecks.sessionId(sessionHeader, request.sessionId());
        String requestId = RequestChecks.requestId(requestIdHeader);
        ModelCard card = pipelines.modelCard();
        // Resolved here in both modes, so that a session request with bad parameters fails before
        // the session is read or reserved (SessionService resolves them again for its turn).
        GenerationSettings settings = GenerationSettings.resolve(params, defaults);

        Multi<GenerationEvent> events;
        if (sessionId == null) {
            int[] prompt = prompts.build(Conversation.fromMessages(messages, null));
            RequestChecks.fitsContext(prompt.length, card, "messages");
            events = generations.generate(new GenerationRequest(requestId, null, "openai-" + requestId, false,
                    prompt, settings));
        } else {
            String userMessage = OpenAiMessages.lastUserMessage(messages);
            Session session = sessions.get(sessionId).session();
            int promptTokens = prompts.build(new Conversation(session.systemPrompt(), session.turns(), userMessage))
                    .length;
            RequestChecks.fitsContext(promptTokens, card, "messages");
            events = sessions.chat(sessionId, userMessage, null, params, requestId);
        }
        boolean stream = Boolean.TRUE.equals(request.stream());
        boolean includeUsage = request.streamOptions() != null
                && Boolean.TRUE.equals(request.streamOptions().includeUsage());
        ChatShape shape = new ChatShape("chatcmpl-" + requestId, created, card.modelId(),
                params.logprobs() ? logprobs : null);
        return responses.respond(events, stream, includeUsage, shape);
    }
}
