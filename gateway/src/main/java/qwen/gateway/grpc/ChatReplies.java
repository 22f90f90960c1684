package qwen.gateway.grpc;

import com.google.protobuf.ByteString;
import com.google.protobuf.Timestamp;
import java.time.Instant;
import java.util.Arrays;
import qwen.gateway.chat.ChatMessage.Role;
import qwen.gateway.chat.GenerationEvent;
import qwen.gateway.chat.GenerationEvent.Alternative;
import qwen.gateway.chat.GenerationEvent.TokenLogprobs;
import qwen.gateway.session.SessionMessage;
import qwen.gateway.session.SessionState;
import qwen.gateway.tokenizer.QwenTokenizer;
import qwen.proto.chat.v1.ChatEvent;
import qwen.proto.chat.v1.ChatMessage;
import qwen.proto.chat.v1.Delta;
import qwen.proto.chat.v1.FinishReason;
import qwen.proto.chat.v1.Finished;
import qwen.proto.chat.v1.Session;
import qwen.proto.chat.v1.Started;
import qwen.proto.chat.v1.Timing;
import qwen.proto.chat.v1.TokenLogprob;
import qwen.proto.chat.v1.TopLogprob;
import qwen.proto.chat.v1.Usage;

/** Writes the gateway's events and sessions as qwen.chat.v1 messages. */
final class ChatReplies {

    private final QwenTokenizer tokenizer;

    ChatReplies(QwenTokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    ChatEvent event(GenerationEvent event, String modelId) {
        return switch (event) {
            case GenerationEvent.Started s -> ChatEvent.newBuilder().setStarted(Started.newBuilder()
                    .setRequestId(s.requestId())
                    .setSessionId(s.sessionId() == null ? "" : s.sessionId())
                    .setPromptTokens(s.promptTokens())
                    .setCachedPromptTokens(s.cachedPromptTokens())
                    .setSeed(s.seed())
                    .setModelId(modelId)).build();
            case GenerationEvent.Delta d -> ChatEvent.newBuilder().setDelta(delta(d)).build();
            case GenerationEvent.Finished f -> ChatEvent.newBuilder().setFinished(Finished.newBuilder()
                    .setFinishReason(reason(f.reason()))
                    .setMatchedStop(f.matchedStop())
                    .setUsage(Usage.newBuilder()
                            .setPromptTokens(f.usage().promptTokens())
                            .setCompletionTokens(f.usage().completionTokens())
                            .setCachedPromptTokens(f.usage().cachedPromptTokens()))
                    .setTiming(Timing.newBuilder()
                            .setTimeToFirstTokenNs(f.timeToFirstTokenNanos())
                            .setTotalNs(f.totalNanos())
                            .setQueueNs(f.queueNanos()))).build();
        };
    }

    /**
     * A session for GetSession (with its messages) or ListSessions (without).
     */
    Session session(SessionState state, boolean withMessages) {
        qwen.gateway.session.Session session = state.session();
        Session.Builder out = Session.newBuilder()
                .setSessionId(session.id())
                .setTitle(session.title())
                .putAllMetadata(session.metadata())
                .setSystemPrompt(session.systemPrompt())
                .setCreateTime(timestamp(session.createTime()))
                .setUpdateTime(timestamp(session.updateTime()))
                .setMessageCount(session.messages().size())
                .setHistoryTokens(state.historyTokens())
                .setRunningRequestId(state.runningRequestId());
        if (withMessages) {
            for (SessionMessage message : session.messages()) {
                out.addMessages(ChatMessage.newBuilder()
                        .setRole(message.role() == Role.USER
                                ? qwen.proto.chat.v1.Role.ROLE_USER : qwen.proto.chat.v1.Role.ROLE_ASSISTANT)
                        .setContent(message.content())
                        .setTokenCount(message.tokenCount())
                        .setCreateTime(timestamp(message.createTime())));
            }
        }
        return out.build();
    }

    private Delta delta(GenerationEvent.Delta d) {
        Delta.Builder out = Delta.newBuilder().setText(d.text());
        Arrays.stream(d.tokenIds()).forEach(out::addTokenIds);
        if (d.logprobs() != null) {
            for (TokenLogprobs lp : d.logprobs()) {
                TokenLogprob.Builder token = TokenLogprob.newBuilder()
                        .setTokenId(lp.tokenId())
                        .setToken(text(lp.tokenId()))
                        .setRawBytes(bytes(lp.tokenId()))
                        .setLogprob(lp.logprob());
                for (Alternative alternative : lp.top()) {
                    token.addTopLogprobs(TopLogprob.newBuilder()
                            .setTokenId(alternative.tokenId())
                            .setToken(text(alternative.tokenId()))
                            .setRawBytes(bytes(alternative.tokenId()))
                            .setLogprob(alternative.logprob()));
                }
                out.addLogprobs(token);
            }
        }
        return out.build();
    }

    /** A token's text; ids past the tokenizer (lm_head padding rows) have none. */
    private String text(int id) {
        return id < tokenizer.vocabularySize() ? tokenizer.decode(new int[] {id}) : "";
    }

    private ByteString bytes(int id) {
        return id < tokenizer.vocabularySize()
                ? ByteString.copyFrom(tokenizer.decodeBytes(new int[] {id})) : ByteString.EMPTY;
    }

    private static FinishReason reason(GenerationEvent.FinishReason reason) {
        return switch (reason) {
            case STOP -> FinishReason.FINISH_REASON_STOP;
            case LENGTH -> FinishReason.FINISH_REASON_LENGTH;
            case CANCELLED -> FinishReason.FINISH_REASON_CANCELLED;
        };
    }

    static Timestamp timestamp(Instant instant) {
        return Timestamp.newBuilder().setSeconds(instant.getEpochSecond()).setNanos(instant.getNano()).build();
    }
}
