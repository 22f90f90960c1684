package qwen.gateway.openai;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import java.util.ArrayList;
import java.util.List;
import qwen.gateway.chat.Conversation;
import qwen.gateway.chat.PromptBuilder;
import qwen.gateway.openai.ResponseBodies.Detokenized;
import qwen.gateway.openai.ResponseBodies.Tokens;
import qwen.gateway.shard.PipelineService;
import qwen.gateway.tokenizer.QwenTokenizer;
import qwen.gateway.tokenizer.SpecialTokens;

/**
 * vLLM's {@code POST /tokenize} and {@code POST /detokenize}: the ids the completion endpoints would
 * send for a prompt or a conversation, and the text of ids. Changes nothing. Blocking (tokenization):
 * call it off the event loop.
 */
@ApplicationScoped
public class Tokenization {

    private final QwenTokenizer tokenizer;
    private final PromptBuilder prompts;
    private final PipelineService pipelines;

    @Inject
    Tokenization(QwenTokenizer tokenizer, PromptBuilder prompts, PipelineService pipelines) {
        this.tokenizer = tokenizer;
        this.prompts = prompts;
        this.pipelines = pipelines;
    }

    /**
     * {@code prompt} as {@code /v1/completions} encodes it, or {@code messages} as the ChatML prompt
     * of {@code /v1/chat/completions} (stateless).
     */
    Tokens tokenize(TokenizeRequest request) {
        RequestChecks.body(request, "\"prompt\" or \"messages\"");
        if ((request.prompt() == null) == (request.messages() == null)) {
            throw InvalidRequestException.of(request.prompt() == null ? "prompt" : "messages",
                    "send exactly one of \"prompt\" (text) and \"messages\" (a conversation)");
        }
        int[] ids = request.prompt() != null
                ? tokenizer.encode(request.prompt(), SpecialTokens.ALL)
                : prompts.build(Conversation.fromMessages(OpenAiMessages.read(request.messages()), null));
        List<Integer> tokens = new ArrayList<>(ids.length);
        for (int id : ids) {
            tokens.add(id);
        }
        return new Tokens(tokens, ids.length, pipelines.modelCard().seqLength());
    }

    /** The text of the ids, special tokens shown as their text. */
    Detokenized detokenize(DetokenizeRequest request) {
        RequestChecks.body(request, "\"tokens\"");
        if (request.tokens() == null) {
            throw InvalidRequestException.of("tokens", "tokens is required: an array of token ids");
        }
        int vocabulary = tokenizer.vocabularySize();
        int[] ids = new int[request.tokens().size()];
        for (int i = 0; i < ids.length; i++) {
            Integer id = request.tokens().get(i);
            if (id == null || id < 0 || id >= vocabulary) {
                throw InvalidRequestException.of("tokens[" + i + "]", "tokens[" + i + "] is " + id
                        + ", not a token id: ids are integers in [0, " + vocabulary + ")");
            }
            ids[i] = id;
        }
        return new Detokenized(tokenizer.decode(ids));
    }
}
