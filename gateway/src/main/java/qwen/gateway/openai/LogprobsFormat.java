package qwen.gateway.openai;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import qwen.gateway.chat.GenerationEvent.Alternative;
import qwen.gateway.chat.GenerationEvent.TokenLogprobs;
import qwen.gateway.openai.ResponseBodies.ChatLogprobs;
import qwen.gateway.openai.ResponseBodies.LegacyLogprobs;
import qwen.gateway.openai.ResponseBodies.TokenLogprob;
import qwen.gateway.openai.ResponseBodies.TopLogprob;
import qwen.gateway.tokenizer.QwenTokenizer;

/**
 * Writes the engine's per-token logprobs in OpenAI's two shapes: the chat shape (token text, raw
 * bytes, alternatives) and the legacy completions shape (parallel lists).
 */
final class LogprobsFormat {

    /**
     * JSON has no infinity; like vLLM, a logprob below this (a token the sampler ruled out) is
     * reported as this value.
     */
    static final float FLOOR = -9999.0f;

    private final QwenTokenizer tokenizer;

    LogprobsFormat(QwenTokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    /** The chat shape of {@code tokens}. */
    ChatLogprobs chat(List<TokenLogprobs> tokens) {
        List<TokenLogprob> content = new ArrayList<>(tokens.size());
        for (TokenLogprobs token : tokens) {
            List<TopLogprob> top = new ArrayList<>(token.top().size());
            for (Alternative alternative : token.top()) {
                byte[] bytes = bytes(alternative.tokenId());
                top.add(new TopLogprob(text(bytes), clamp(alternative.logprob()), unsigned(bytes)));
            }
            byte[] bytes = bytes(token.tokenId());
            content.add(new TokenLogprob(text(bytes), clamp(token.logprob()), unsigned(bytes), top));
        }
        return new ChatLogprobs(content);
    }

    /**
     * The legacy shape of {@code tokens}.
     *
     * @param textOffset where the first token's text starts in the completion text, in code points
     */
    LegacyLogprobs legacy(List<TokenLogprobs> tokens, int textOffset) {
        List<String> texts = new ArrayList<>(tokens.size());
        List<Float> logprobs = new ArrayList<>(tokens.size());
        List<Map<String, Float>> tops = new ArrayList<>(tokens.size());
        List<Integer> offsets = new ArrayList<>(tokens.size());
        int offset = textOffset;
        for (TokenLogprobs token : tokens) {
            String text = text(bytes(token.tokenId()));
            texts.add(text);
            logprobs.add(clamp(token.logprob()));
            Map<String, Float> top = new LinkedHashMap<>();
            for (Alternative alternative : token.top()) {
                top.putIfAbsent(text(bytes(alternative.tokenId())), clamp(alternative.logprob()));
            }
            tops.add(top);
            offsets.add(offset);
            offset += text.codePointCount(0, text.length());
        }
        return new LegacyLogprobs(texts, logprobs, tops, offsets);
    }

    /** The code points the legacy token texts of {@code tokens} add up to. */
    int legacyLength(List<TokenLogprobs> tokens) {
        int length = 0;
        for (TokenLogprobs token : tokens) {
            String text = text(bytes(token.tokenId()));
            length += text.codePointCount(0, text.length());
        }
        return length;
    }

    /** A token's bytes; none for an id past the tokenizer's vocabulary (a padding row of the model). */
    private byte[] bytes(int id) {
        if (id < 0 || id >= tokenizer.vocabularySize()) {
            return new byte[0];
        }
        return tokenizer.decodeBytes(new int[] {id});
    }

    /** The bytes as text; part of a multi-byte character shows as U+FFFD, as OpenAI shows it. */
    private static String text(byte[] bytes) {
        return new String(bytes, StandardCharsets.UTF_8);
    }

    private static List<Integer> unsigned(byte[] bytes) {
        List<Integer> out = new ArrayList<>(bytes.length);
        for (byte b : bytes) {
            out.add(b & 0xff);
        }
        return out;
    }

    private static float clamp(float logprob) {
        return Float.isNaN(logprob) || logprob < FLOOR ? FLOOR : logprob;
    }
}
