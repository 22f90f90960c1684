package qwen.gateway.openai;

import java.util.ArrayList;
import java.util.List;
import qwen.gateway.chat.GenerationEvent.Delta;
import qwen.gateway.chat.GenerationEvent.Finished;
import qwen.gateway.chat.GenerationEvent.Started;
import qwen.gateway.chat.GenerationEvent.TokenLogprobs;
import qwen.gateway.openai.ResponseBodies.AssistantMessage;
import qwen.gateway.openai.ResponseBodies.ChatChoice;
import qwen.gateway.openai.ResponseBodies.ChatCompletion;
import qwen.gateway.openai.ResponseBodies.ChatCompletionChunk;
import qwen.gateway.openai.ResponseBodies.ChatLogprobs;
import qwen.gateway.openai.ResponseBodies.ChunkChoice;
import qwen.gateway.openai.ResponseBodies.Usage;

/**
 * {@code /v1/chat/completions} bodies: {@code chat.completion}, or {@code chat.completion.chunk}
 * events that start with {@code delta: {role: "assistant", content: ""}}.
 *
 * @param id {@code chatcmpl-<request id>}
 * @param created Unix seconds when the request arrived
 * @param logprobs null when the client did not ask for logprobs
 */
record ChatShape(String id, long created, String model, LogprobsFormat logprobs) implements ResponseShape {

    private static final String CHUNK = "chat.completion.chunk";

    @Override
    public Object started(Started started) {
        return chunk(new ChunkChoice(0, new ResponseBodies.Delta("assistant", ""), null, null), null);
    }

    @Override
    public Object delta(Delta delta) {
        boolean withLogprobs = logprobs != null && delta.logprobs() != null && !delta.logprobs().isEmpty();
        if (delta.text().isEmpty() && !withLogprobs) {
            return null;
        }
        ChatLogprobs tokens = withLogprobs ? logprobs.chat(delta.logprobs()) : null;
        return chunk(new ChunkChoice(0, new ResponseBodies.Delta(null, delta.text()), tokens, null), null);
    }

    @Override
    public Object finished(Finished finished) {
        return chunk(new ChunkChoice(0, new ResponseBodies.Delta(null, null), null,
                ResponseShape.finishReason(finished.reason())), null);
    }

    @Override
    public Object usage(Finished finished) {
        return new ChatCompletionChunk(id, CHUNK, created, model, List.of(), Usage.of(finished.usage()));
    }

    @Override
    public Object whole(Started started, List<Delta> deltas, Finished finished) {
        ChatLogprobs tokens = null;
        if (logprobs != null) {
            List<TokenLogprobs> all = new ArrayList<>();
            for (Delta delta : deltas) {
                if (delta.logprobs() != null) {
                    all.addAll(delta.logprobs());
                }
            }
            tokens = logprobs.chat(all);
        }
        ChatChoice choice = new ChatChoice(0, new AssistantMessage("assistant", finished.text()), tokens,
                ResponseShape.finishReason(finished.reason()));
        return new ChatCompletion(id, "chat.completion", created, model, List.of(choice), Usage.of(finished.usage()));
    }

    private ChatCompletionChunk chunk(ChunkChoice choice, Usage usage) {
        return new ChatCompletionChunk(id, CHUNK, created, model, List.of(choice), usage);
    }
}
