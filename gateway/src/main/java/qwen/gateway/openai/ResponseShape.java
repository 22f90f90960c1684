package qwen.gateway.openai;

import java.util.List;
import qwen.gateway.chat.GenerationEvent.Delta;
import qwen.gateway.chat.GenerationEvent.FinishReason;
import qwen.gateway.chat.GenerationEvent.Finished;
import qwen.gateway.chat.GenerationEvent.Started;

/**
 * How one endpoint writes the events of one generation as OpenAI bodies: chunk by chunk when
 * streamed, or as one answer. An instance belongs to one request (it knows its id and options).
 */
interface ResponseShape {

    /** The chunk to send once the request is admitted, or null for none. */
    Object started(Started started);

    /** The chunk for new output, or null when it carries nothing to send. */
    Object delta(Delta delta);

    /** The chunk that carries the finish reason. */
    Object finished(Finished finished);

    /** The chunk with empty choices and the usage ({@code stream_options.include_usage}). */
    Object usage(Finished finished);

    /** The whole answer of a request that is not streamed. */
    Object whole(Started started, List<Delta> deltas, Finished finished);

    /** OpenAI's finish_reason; a cancelled generation is "abort", as vLLM reports it. */
    static String finishReason(FinishReason reason) {
        return switch (reason) {
            case STOP -> "stop";
            case LENGTH -> "length";
            case CANCELLED -> "abort";
        };
    }
}
