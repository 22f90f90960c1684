package qwen.gateway.session;

import jakarta.inject.Inject;
import jakarta.inject.Singleton;
import qwen.gateway.chat.GatewayException;
import qwen.gateway.shard.Pipeline;
import qwen.gateway.shard.PipelineService;

/**
 * How long one sequence may be on this deployment (ModelInfo.max_sequence_tokens): the model's
 * trained context (seq_length), and never more than the KV positions every shard can hold. A
 * prompt longer than that is refused before anything is queued.
 */
@Singleton
public final class SequenceLimits {

    private final PipelineService pipelines;

    @Inject
    public SequenceLimits(PipelineService pipelines) {
        this.pipelines = pipelines;
    }

    /**
     * The most tokens one sequence may hold, prompt and reply together.
     *
     * @throws GatewayException UNAVAILABLE while the shards are not connected
     */
    public int maxSequenceTokens() {
        Pipeline pipeline = pipelines.pipeline();
        return (int) Math.min(pipeline.seqLength(), pipeline.kvCapacityTokens());
    }

    /**
     * Refuses a prompt that does not fit.
     *
     * @param field the request field the prompt came from, for the message
     * @throws GatewayException INVALID_ARGUMENT naming the field, the length and the limit
     */
    public void checkPrompt(String field, int promptTokens) {
        int limit = maxSequenceTokens();
        if (promptTokens > limit) {
            throw GatewayException.invalid(field + ": the prompt is " + promptTokens + " tokens, more than the "
                    + limit + " one sequence may hold (ModelInfo.max_sequence_tokens); shorten it");
        }
    }
}
