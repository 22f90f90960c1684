package qwen.gateway.tokenizer;

import java.util.Set;

/**
 * Which special-token surface forms ({@code <|im_end|>} and the like) {@link QwenTokenizer#encode}
 * turns into their special ids; every other occurrence is encoded as ordinary text (SPEC 4.5).
 *
 * <p>Use {@link #NONE} for anything a client wrote: it makes control-token injection impossible.
 * {@link #ALL} reproduces Qwen's default {@code tokenizer.encode(text)}.
 */
public final class SpecialTokens {

    /** Every special surface form becomes its id, as in Qwen's default {@code encode}. */
    public static final SpecialTokens ALL = new SpecialTokens(true, Set.of());

    /** No special surface form is recognised; the text is encoded as ordinary text. */
    public static final SpecialTokens NONE = new SpecialTokens(false, Set.of());

    private final boolean all;
    private final Set<String> allowed;

    private SpecialTokens(boolean all, Set<String> allowed) {
        this.all = all;
        this.allowed = allowed;
    }

    /**
     * Allows only the given surface forms.
     *
     * @param surfaces special tokens such as {@code "<|endoftext|>"}
     * @throws IllegalArgumentException if one of them is not a Qwen special token
     */
    public static SpecialTokens only(String... surfaces) {
        for (String surface : surfaces) {
            if (!QwenTokenizer.SPECIAL_IDS.containsKey(surface)) {
                throw new IllegalArgumentException("'" + surface + "' is not a Qwen special token");
            }
        }
        return new SpecialTokens(false, Set.of(surfaces));
    }

    boolean allows(String surface) {
        return all || allowed.contains(surface);
    }

    boolean allowsNone() {
        return !all && allowed.isEmpty();
    }

    @Override
    public String toString() {
        return all ? "SpecialTokens.ALL" : "SpecialTokens" + allowed;
    }
}
