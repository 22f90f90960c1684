package qwen.gateway.openai;

import io.quarkus.runtime.Startup;
import io.smallrye.common.annotation.Blocking;
import jakarta.inject.Singleton;
import jakarta.inject.Inject;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.HeaderParam;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import java.time.Instant;
import java.util.List;
import org.jboss.resteasy.reactive.RestMulti;
import org.jboss.resteasy.reactive.server.ServerExceptionMapper;
import qwen.gateway.chat.GatewayException;
import qwen.gateway.openai.ResponseBodies.Detokenized;
import qwen.gateway.openai.ResponseBodies.ModelEntry;
import qwen.gateway.openai.ResponseBodies.ModelList;
import qwen.gateway.openai.ResponseBodies.Tokens;
import qwen.gateway.shard.ModelCard;
import qwen.gateway.shard.PipelineService;

/**
 * The OpenAI-compatible HTTP API (the shapes of OpenAI's API and of vLLM's server): chat
 * completions, text completions, models, and vLLM's tokenize and detokenize. Each method translates
 * and delegates; the work runs on worker threads ({@link Blocking}), never on the event loop, and
 * tokens stream out as the engine emits them.
 *
 * <p>Every failure of these endpoints, malformed JSON included, answers with OpenAI's error JSON
 * (see {@link OpenAiErrors}); the mapper is local to this class, so other HTTP endpoints of the
 * gateway keep their own error shapes.
 */
@Path("/")
@Singleton
@Startup
public class OpenAiResource {

    /** What {@code owned_by} reports for the served model. */
    static final String OWNER = "qwen-serve";

    private final ChatCompletions chat;
    private final Completions completions;
    private final Tokenization tokenization;
    private final PipelineService pipelines;
    /** When the gateway started serving (the resource is made at start-up), Unix seconds. */
    private final long startedAt = Instant.now().getEpochSecond();

    @Inject
    OpenAiResource(ChatCompletions chat, Completions completions, Tokenization tokenization,
                   PipelineService pipelines) {
        this.chat = chat;
        this.completions = completions;
        this.tokenization = tokenization;
        this.pipelines = pipelines;
    }

    /** One chat turn; a JSON body, or Server-Sent Events when the body has {@code "stream": true}. */
    @POST
    @Path("v1/chat/completions")
    @Consumes(MediaType.APPLICATION_JSON)
    @Blocking
    public RestMulti<String> chatCompletions(ChatCompletionRequest request,
                                             @HeaderParam("X-Session-Id") String sessionId,
                                             @HeaderParam("X-Request-Id") String requestId) {
        return chat.create(request, sessionId, requestId);
    }

    /** A raw-prompt completion; a JSON body, or Server-Sent Events when {@code "stream": true}. */
    @POST
    @Path("v1/completions")
    @Consumes(MediaType.APPLICATION_JSON)
    @Blocking
    public RestMulti<String> completions(CompletionRequest request, @HeaderParam("X-Request-Id") String requestId) {
        return completions.create(request, requestId);
    }

    /** The served model. */
    @GET
    @Path("v1/models")
    @Produces(MediaType.APPLICATION_JSON)
    public ModelList models() {
        return new ModelList("list", List.of(entry(pipelines.modelCard())));
    }

    /** The served model by id; 404 for any other id. */
    @GET
    @Path("v1/models/{model}")
    @Produces(MediaType.APPLICATION_JSON)
    public ModelEntry model(@PathParam("model") String model) {
        ModelCard card = pipelines.modelCard();
        if (!card.modelId().equals(model)) {
            throw GatewayException.notFound("The model '" + model + "' does not exist; this server serves '"
                    + card.modelId() + "'");
        }
        return entry(card);
    }

    @POST
    @Path("tokenize")
    @Consumes(MediaType.APPLICATION_JSON)
    @Produces(MediaType.APPLICATION_JSON)
    @Blocking
    public Tokens tokenize(TokenizeRequest request) {
        return tokenization.tokenize(request);
    }

    @POST
    @Path("detokenize")
    @Consumes(MediaType.APPLICATION_JSON)
    @Produces(MediaType.APPLICATION_JSON)
    @Blocking
    public Detokenized detokenize(DetokenizeRequest request) {
        return tokenization.detokenize(request);
    }

    /** OpenAI's error JSON for every failure of the methods above. */
    @ServerExceptionMapper
    public Response error(Throwable failure) {
        return OpenAiErrors.toResponse(failure);
    }

    private ModelEntry entry(ModelCard card) {
        return new ModelEntry(card.modelId(), "model", startedAt, OWNER, card.seqLength());
    }
}
