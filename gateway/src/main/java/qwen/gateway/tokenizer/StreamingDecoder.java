package qwen.gateway.tokenizer;

import java.util.Arrays;
import java.util.Objects;

/**
 * Turns a stream of generated token ids into text deltas without ever splitting a character.
 *
 * <p>A token may end in the middle of a multi-byte UTF-8 character (a Chinese character or an
 * emoji is often split across two tokens). Such an incomplete tail is held back until the next
 * token completes it, so a client never sees a transient U+FFFD. Bytes that can no longer become
 * a valid character are replaced at once, so the concatenation of every {@link #accept} result and
 * {@link #flush()} equals {@link QwenTokenizer#decode(int[], boolean)} of all the ids.
 *
 * <p>One instance follows one generation and is not thread-safe.
 */
public final class StreamingDecoder {

    private final QwenTokenizer tokenizer;
    private final boolean skipSpecial;
    private byte[] pending = new byte[64]; // bytes not yet turned into text: at most an incomplete tail
    private int pendingLength;

    /**
     * @param skipSpecial drop special tokens ({@code <|im_end|>}, {@code <|endoftext|>}, ...)
     *     instead of emitting their surface forms, as Qwen's chat_stream does
     */
    public StreamingDecoder(QwenTokenizer tokenizer, boolean skipSpecial) {
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
        this.skipSpecial = skipSpecial;
    }

    /**
     * Adds one token and returns the text it completes, possibly empty.
     *
     * @throws IllegalArgumentException if the id is outside the vocabulary
     */
    public String accept(int id) {
        byte[] token = tokenizer.tokenBytes(id);
        if (skipSpecial && tokenizer.isSpecial(id)) {
            return "";
        }
        if (pendingLength + token.length > pending.length) {
            pending = Arrays.copyOf(pending, Math.max(pending.length * 2, pendingLength + token.length));
        }
        System.arraycopy(token, 0, pending, pendingLength, token.length);
        pendingLength += token.length;
        return drain(false);
    }

    /**
     * Ends the stream: returns the held-back bytes, an incomplete character becoming U+FFFD.
     * The decoder is empty afterwards and may be reused.
     */
    public String flush() {
        return drain(true);
    }

    private String drain(boolean endOfInput) {
        StringBuilder text = new StringBuilder(pendingLength);
        int consumed = Utf8Decoder.decode(pending, 0, pendingLength, endOfInput, text);
        System.arraycopy(pending, consumed, pending, 0, pendingLength - consumed);
        pendingLength -= consumed;
        return text.toString();
    }
}
