package qwen.gateway.openai;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import java.time.Instant;
import org.jboss.resteasy.reactive.RestMulti;
import qwen.gateway.chat.GenerationDefaults;
import qwen.gateway.chat.GenerationRequest;
import qwen.gateway.chat.GenerationSettings;
import qwen.gateway.chat.Generations;
import qwen.gateway.chat.RequestedParams;
import qwen.gateway.shard.ModelCard;
import qwen.gateway.shard.PipelineService;
import qwen.gateway.tokenizer.QwenTokenizer;
import qwen.gateway.tokenizer.SpecialTokens;

/**
 * {@code POST /v1/completions}: continues a raw prompt (text or token ids), with no ChatML around
 * it. Stateless: the KV is freed when the request ends. Blocking (tokenization): call it off the
 * event loop.
 */
@ApplicationScoped
public class Completions {

    private final Generations generations;
    private final PipelineService pipelines;
    private final GenerationDefaults defaults;
    private final QwenTokenizer tokenizer;
    private final LogprobsFormat logprobs;
    private final GenerationResponses responses;

    @Inject
    Completions(Generations generations, PipelineService pipelines, GenerationDefaults defaults,
                QwenTokenizer tokenizer, ObjectMapper json) {
        this.generations = generations;
        this.pipelines = pipelines;
        this.defaults = defaults;
        this.tokenizer = tokenizer;
        this.logprobs = new LogprobsFormat(tokenizer);
        this.responses = new GenerationResponses(json);
    }

    /** @param requestIdHeader the {@code X-Request-Id} header, or null */
    RestMulti<String> create(CompletionRequest request, String requestIdHeader) {
        RequestChecks.body(request, "\"prompt\"");
        long created = Instant.now().getEpochSecond();
        RequestedParams params = OpenAiParams.completion(request);
        String requestId = RequestChecks.requestId(requestIdHeader);
        ModelCard card = pipelines.modelCard();
        int[] prompt = promptIds(request.prompt(), card);
        RequestChecks.fitsContext(prompt.length, card, "prompt");
        GenerationSettings settings = GenerationSettings.resolve(params, defaults);
        var events = generations.generate(new GenerationRequest(requestId, null, "openai-" + requestId, false, prompt,
                settings));
        boolean stream = Boolean.TRUE.equals(request.stream());
        boolean includeUsage = request.streamOptions() != null
                && Boolean.TRUE.equals(request.streamOptions().includeUsage());
        TextShape shape = new TextShape("cmpl-" + requestId, created, card.modelId(),
                params.logprobs() ? logprobs : null);
        return responses.respond(events, stream, includeUsage, shape);
    }

    /**
     * The prompt's ids: a string encoded with special-token text recognised (a raw prompt may spell
     * ChatML itself), or token ids checked against the vocabulary. A one-element array holding either
     * is one prompt too; more prompts than one are refused.
     */
    private int[] promptIds(JsonNode prompt, ModelCard card) {
        if (prompt == null || prompt.isNull()) {
            throw InvalidRequestException.of("prompt", "prompt is required: a string or an array of token ids");
        }
        if (prompt.isArray() && prompt.size() == 1 && (prompt.get(0).isTextual() || prompt.get(0).isArray())) {
            return promptIds(prompt.get(0), card);
        }
        if (prompt.isTextual()) {
            if (prompt.textValue().isEmpty()) {
                throw InvalidRequestException.of("prompt", "prompt is empty; send at least one character");
            }
            return tokenizer.encode(prompt.textValue(), SpecialTokens.ALL);
        }
        if (!prompt.isArray()) {
            throw InvalidRequestException.of("prompt", "prompt must be a string or an array of token ids");
        }
        if (prompt.isEmpty()) {
            throw InvalidRequestException.of("prompt", "prompt is an empty array; send at least one token id");
        }
        // Ids must decode (tokenizer) and have an embedding row (model); the smaller vocabulary rules.
        int vocabulary = Math.min(tokenizer.vocabularySize(), card.vocabSize());
        int[] ids = new int[prompt.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode id = prompt.get(i);
            if (id.isTextual() || id.isArray()) {
                throw InvalidRequestException.of("prompt", "prompt holds " + prompt.size() + " prompts; this server"
                        + " takes one prompt per request (a string or an array of token ids)");
            }
            if (!id.isIntegralNumber() || !id.canConvertToInt() || id.intValue() < 0 || id.intValue() >= vocabulary) {
                throw InvalidRequestException.of("prompt[" + i + "]", "prompt[" + i + "] is " + id
                        + ", not a token id of this model: ids are integers in [0, " + vocabulary + ")");
            }
            ids[i] = id.intValue();
        }
        return ids;
    }
}
