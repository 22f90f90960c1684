package qwen.gateway.chat;

import java.util.Arrays;

/**
 * A ChatML prompt ready for the model, as built by {@link ChatTemplate#makeContext}.
 *
 * @param ids the prompt's token ids, ending with {@code <|im_start|>assistant\n}
 * @param historyTurnsKept how many of the newest history turns fit the window; the older ones were
 *     dropped
 */
public record ChatPrompt(int[] ids, int historyTurnsKept) {

    public ChatPrompt {
        ids = ids.clone();
    }

    /** A copy of the ids, so the record stays immutable. */
    @Override
    public int[] ids() {
        return ids.clone();
    }

    /** Number of prompt tokens. */
    public int length() {
        return ids.length;
    }

    // Records compare arrays by identity; a prompt is a value, so compare contents.
    @Override
    public boolean equals(Object other) {
        return other instanceof ChatPrompt that
                && historyTurnsKept == that.historyTurnsKept
                && Arrays.equals(ids, that.ids);
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(ids) + historyTurnsKept;
    }

    @Override
    public String toString() {
        return "ChatPrompt[" + ids.length + " ids, historyTurnsKept=" + historyTurnsKept + "]";
    }
}
