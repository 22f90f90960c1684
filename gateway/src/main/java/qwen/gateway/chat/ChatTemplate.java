package qwen.gateway.chat;

import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import qwen.gateway.tokenizer.QwenTokenizer;
import qwen.gateway.tokenizer.SpecialTokens;

/**
 * Qwen's ChatML prompt construction, {@code make_context} with {@code chat_format="chatml"}
 * (SPEC 5.2), and the stop rule of {@code chat()} (SPEC 5.3).
 *
 * <p>Layout, where S = {@code <|im_start|>}, E = {@code <|im_end|>} and NL = the id of "\n":
 * <pre>
 * S system NL {system} E
 * ( NL S user NL {user} E NL S assistant NL {assistant} E )   per kept history turn
 * NL S user NL {query} E NL S assistant NL
 * </pre>
 * S and E are inserted as ids, and every role and content is encoded separately with no special
 * tokens allowed, so a message that spells {@code <|im_end|>} cannot close its own turn.
 */
public final class ChatTemplate {

    /** The system prompt Qwen's {@code chat()} uses when the caller gives none. */
    public static final String DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant.";

    /**
     * Generation stops at the first sampled token in this set: {@code <|endoftext|>} (eos),
     * {@code <|im_end|>} and {@code <|im_start|>}. Qwen forces eos right after either ChatML token;
     * stopping at once gives the same visible text.
     */
    public static final Set<Integer> STOP_TOKEN_IDS = Set.of(
            QwenTokenizer.ENDOFTEXT_ID, QwenTokenizer.IM_START_ID, QwenTokenizer.IM_END_ID);

    private final QwenTokenizer tokenizer;
    private final int[] newline;
    private final int[] assistantRole;

    /** Creates a template that encodes with {@code tokenizer}. */
    public ChatTemplate(QwenTokenizer tokenizer) {
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
        // make_context encodes these two with Qwen's default (all specials allowed); they hold no
        // special surface form, so the choice does not change their ids.
        this.newline = tokenizer.encode("\n", SpecialTokens.ALL);
        this.assistantRole = tokenizer.encode("assistant", SpecialTokens.ALL);
    }

    /** Whether generation ends at {@code id}; the stop token itself is not part of the reply. */
    public static boolean isStopToken(int id) {
        return STOP_TOKEN_IDS.contains(id);
    }

    /**
     * Builds the prompt for {@code query}.
     *
     * <p>History turns are taken newest first while {@code system + turn + turns already taken}
     * stays strictly below {@code maxWindowSize}; the first turn that does not fit is dropped with
     * every older one. The query itself is not counted, so the prompt may exceed the window.
     *
     * @param system the system prompt; pass {@link #DEFAULT_SYSTEM_PROMPT} for Qwen's default
     * @param history earlier turns, oldest first
     * @param query the new user message
     * @param maxWindowSize history budget in tokens, {@code max_window_size} of the generation
     *     config (6144 for Qwen-1_8B-Chat)
     * @throws IllegalArgumentException if {@code maxWindowSize} is not positive
     */
    public ChatPrompt makeContext(String system, List<Turn> history, String query, int maxWindowSize) {
        Objects.requireNonNull(system, "system");
        Objects.requireNonNull(history, "history");
        Objects.requireNonNull(query, "query");
        if (maxWindowSize <= 0) {
            throw new IllegalArgumentException("maxWindowSize must be positive, got " + maxWindowSize);
        }
        int[] systemTokens = message("system", system);
        Deque<int[]> kept = new ArrayDeque<>();
        int keptLength = 0;
        for (int i = history.size() - 1; i >= 0; i--) {
            Turn turn = history.get(i);
            int[] turnTokens = concat(newline, message("user", turn.user()),
                    newline, message("assistant", turn.assistant()));
            if (systemTokens.length + turnTokens.length + keptLength >= maxWindowSize) {
                break;
            }
            kept.addFirst(turnTokens);
            keptLength += turnTokens.length;
        }
        int[] queryTokens = concat(newline, message("user", query),
                newline, new int[] {QwenTokenizer.IM_START_ID}, assistantRole, newline);

        int[] ids = new int[systemTokens.length + keptLength + queryTokens.length];
        int position = append(ids, 0, systemTokens);
        for (int[] turnTokens : kept) {
            position = append(ids, position, turnTokens);
        }
        append(ids, position, queryTokens);
        return new ChatPrompt(ids, kept.size());
    }

    /** S + role + NL + content + E, role and content each encoded with no specials allowed. */
    private int[] message(String role, String content) {
        return concat(new int[] {QwenTokenizer.IM_START_ID}, tokenizer.encodeOrdinary(role), newline,
                tokenizer.encodeOrdinary(content), new int[] {QwenTokenizer.IM_END_ID});
    }

    private static int[] concat(int[]... parts) {
        int length = 0;
        for (int[] part : parts) {
            length += part.length;
        }
        int[] out = new int[length];
        int position = 0;
        for (int[] part : parts) {
            position = append(out, position, part);
        }
        return out;
    }

    private static int append(int[] target, int position, int[] part) {
        System.arraycopy(part, 0, target, position, part.length);
        return position + part.length;
    }
}
