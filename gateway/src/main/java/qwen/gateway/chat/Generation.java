package qwen.gateway.chat;

import io.smallrye.mutiny.subscription.MultiEmitter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import qwen.gateway.scheduler.SequenceListener;
import qwen.gateway.tokenizer.QwenTokenizer;
import qwen.gateway.tokenizer.StreamingDecoder;
import qwen.proto.shard.v1.SampledToken;
import qwen.proto.shard.v1.TokenLogprob;

/**
 * One request's generation as the scheduler drives it: turns sampled tokens into text deltas,
 * applies the stop rules (stop tokens, stop strings, max_new_tokens, context length) and emits the
 * events. The scheduler's loop calls the listener methods; emission is serialised on this object
 * so that {@code Started} always comes first.
 */
final class Generation implements SequenceListener {

    /** Told when the generation leaves the scheduler, before Finished is emitted. */
    interface Settlement {
        void settle(Generation generation, int[] heldIds);
    }

    private final GenerationRequest request;
    private final GenerationSettings settings;
    private final int cachedPromptTokens;
    private final int contextLimit;
    private final int vocabularySize;
    private final StreamingDecoder decoder;
    private final StopStrings stops;
    private final MultiEmitter<? super GenerationEvent> emitter;
    private final Settlement settlement;
    private final long submittedNanos = System.nanoTime();

    private final StringBuilder reply = new StringBuilder();
    private int emittedChars;
    private int[] completion = new int[16];
    private int completionLength;
    private GenerationEvent.FinishReason reason;
    private String matchedStop = "";
    private long scheduledNanos;
    private long firstTokenNanos;

    /**
     * @param contextLimit the sequence ends with LENGTH when prompt plus completion reach it
     */
    Generation(GenerationRequest request, int cachedPromptTokens, int contextLimit, QwenTokenizer tokenizer,
               MultiEmitter<? super GenerationEvent> emitter, Settlement settlement) {
        this.request = request;
        this.settings = request.settings();
        this.cachedPromptTokens = cachedPromptTokens;
        this.contextLimit = contextLimit;
        this.vocabularySize = tokenizer.vocabularySize();
        this.decoder = new StreamingDecoder(tokenizer, true);
        this.stops = new StopStrings(settings.stop());
        this.emitter = emitter;
        this.settlement = settlement;
    }

    GenerationRequest request() {
        return request;
    }

    /** Emits Started; called once the sequence is queued. */
    synchronized void started() {
        emitter.emit(new GenerationEvent.Started(request.requestId(), request.sessionId(),
                request.promptIds().length, cachedPromptTokens, settings.seed()));
    }

    @Override
    public synchronized void onScheduled() {
        scheduledNanos = System.nanoTime();
    }

    @Override
    public synchronized boolean onToken(SampledToken token) {
        if (firstTokenNanos == 0) {
            firstTokenNanos = System.nanoTime();
        }
        int id = token.getTokenId();
        addCompletion(id);
        if (ChatTemplate.isStopToken(id)) {
            reason = GenerationEvent.FinishReason.STOP;
            return false;
        }
        // Ids past the tokenizer's vocabulary (padding rows of the embedding) have no text.
        reply.append(id < vocabularySize ? decoder.accept(id) : "");
        List<GenerationEvent.TokenLogprobs> logprobs = logprobs(token);
        StopStrings.Match match = stops.find(reply, emittedChars);
        if (match != null) {
            reply.setLength(match.index());
            emitDelta(new int[] {id}, logprobs);
            reason = GenerationEvent.FinishReason.STOP;
            matchedStop = match.stop();
            return false;
        }
        emitDelta(new int[] {id}, logprobs, reply.length() - stops.heldBack(reply, emittedChars));
        if (completionLength >= settings.maxNewTokens()
                || request.promptIds().length + completionLength >= contextLimit) {
            reason = GenerationEvent.FinishReason.LENGTH;
            return false;
        }
        return true;
    }

    @Override
    public synchronized void onEnded(int[] heldIds, boolean cancelled, GatewayException failure) {
        settlement.settle(this, heldIds);
        if (failure != null) {
            emitter.fail(failure);
            return;
        }
        if (cancelled || reason == null) {
            reason = GenerationEvent.FinishReason.CANCELLED;
        }
        if (matchedStop.isEmpty()) {
            reply.append(decoder.flush()); // an incomplete character at the end becomes U+FFFD
        }
        if (reply.length() > emittedChars) {
            emitDelta(new int[0], List.of());
        }
        long now = System.nanoTime();
        long scheduled = scheduledNanos == 0 ? now : scheduledNanos;
        emitter.emit(new GenerationEvent.Finished(reason, matchedStop, reply.toString(),
                Arrays.copyOf(completion, completionLength),
                new GenerationEvent.Usage(request.promptIds().length, completionLength, cachedPromptTokens),
                firstTokenNanos == 0 ? 0 : firstTokenNanos - submittedNanos, now - submittedNanos,
                scheduled - submittedNanos));
        emitter.complete();
    }

    private void emitDelta(int[] ids, List<GenerationEvent.TokenLogprobs> logprobs) {
        emitDelta(ids, logprobs, reply.length());
    }

    /** Emits the reply's text up to {@code upTo} that was not emitted yet. */
    private void emitDelta(int[] ids, List<GenerationEvent.TokenLogprobs> logprobs, int upTo) {
        String text = reply.substring(emittedChars, Math.max(emittedChars, upTo));
        emittedChars += text.length();
        emitter.emit(new GenerationEvent.Delta(text, ids, logprobs));
    }

    private List<GenerationEvent.TokenLogprobs> logprobs(SampledToken token) {
        if (!settings.logprobs()) {
            return List.of();
        }
        List<GenerationEvent.Alternative> top = new ArrayList<>(token.getTopLogprobsCount());
        for (TokenLogprob alternative : token.getTopLogprobsList()) {
            top.add(new GenerationEvent.Alternative(alternative.getTokenId(), alternative.getLogprob()));
        }
        return List.of(new GenerationEvent.TokenLogprobs(token.getTokenId(), token.getLogprob(), List.copyOf(top)));
    }

    private void addCompletion(int id) {
        if (completionLength == completion.length) {
            completion = Arrays.copyOf(completion, completion.length * 2);
        }
        completion[completionLength++] = id;
    }
}
