package qwen.gateway.openai;

import java.util.ArrayList;
import java.util.List;
import qwen.gateway.chat.GenerationEvent.Delta;
import qwen.gateway.chat.GenerationEvent.Finished;
import qwen.gateway.chat.GenerationEvent.Started;
import qwen.gateway.chat.GenerationEvent.TokenLogprobs;
import qwen.gateway.openai.ResponseBodies.LegacyLogprobs;
import qwen.gateway.openai.ResponseBodies.TextChoice;
import qwen.gateway.openai.ResponseBodies.TextCompletion;
import qwen.gateway.openai.ResponseBodies.Usage;

/**
 * {@code /v1/completions} bodies: {@code text_completion}, whole or as chunks of the same shape.
 * One instance serves one request: it counts the text offsets of the legacy logprobs across chunks.
 */
final class TextShape implements ResponseShape {

    private static final String OBJECT = "text_completion";

    private final String id;
    private final long created;
    private final String model;
    private final LogprobsFormat logprobs;
    private int textOffset;

    /**
     * @param id {@code cmpl-<request id>}
     * @param created Unix seconds when the request arrived
     * @param logprobs null when the client did not ask for logprobs
     */
    TextShape(String id, long created, String model, LogprobsFormat logprobs) {
        this.id = id;
        this.created = created;
        this.model = model;
        this.logprobs = logprobs;
    }

    @Override
    public Object started(Started started) {
        return null;
    }

    @Override
    public Object delta(Delta delta) {
        boolean withLogprobs = logprobs != null && delta.logprobs() != null && !delta.logprobs().isEmpty();
        if (delta.text().isEmpty() && !withLogprobs) {
            return null;
        }
        LegacyLogprobs tokens = null;
        if (withLogprobs) {
            tokens = logprobs.legacy(delta.logprobs(), textOffset);
            textOffset += logprobs.legacyLength(delta.logprobs());
        }
        return body(new TextChoice(0, delta.text(), tokens, null), null);
    }

    @Override
    public Object finished(Finished finished) {
        return body(new TextChoice(0, "", null, ResponseShape.finishReason(finished.reason())), null);
    }

    @Override
    public Object usage(Finished finished) {
        return new TextCompletion(id, OBJECT, created, model, List.of(), Usage.of(finished.usage()));
    }

    @Override
    public Object whole(Started started, List<Delta> deltas, Finished finished) {
        LegacyLogprobs tokens = null;
        if (logprobs != null) {
            List<TokenLogprobs> all = new ArrayList<>();
            for (Delta delta : deltas) {
                if (delta.logprobs() != null) {
                    all.addAll(delta.logprobs());
                }
            }
            tokens = logprobs.legacy(all, 0);
        }
        TextChoice choice = new TextChoice(0, finished.text(), tokens, ResponseShape.finishReason(finished.reason()));
        return body(choice, Usage.of(finished.usage()));
    }

    private TextCompletion body(TextChoice choice, Usage usage) {
        return new TextCompletion(id, OBJECT, created, model, List.of(choice), usage);
    }
}
