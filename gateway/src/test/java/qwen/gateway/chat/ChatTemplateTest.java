package qwen.gateway.chat;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import qwen.gateway.tokenizer.QwenTokenizer;

/** make_context for chatml (SPEC 5.2) and the stop tokens (SPEC 5.3). */
class ChatTemplateTest {

    private static final QwenTokenizer TOKENIZER = QwenTokenizer.bundled();
    private static final ChatTemplate TEMPLATE = new ChatTemplate(TOKENIZER);
    private static final String SYSTEM = ChatTemplate.DEFAULT_SYSTEM_PROMPT;
    private static final int WINDOW = 6144;

    @Test
    void singleQueryWithTheDefaultSystemPrompt() {
        ChatPrompt prompt = TEMPLATE.makeContext(SYSTEM, List.of(), "你好", WINDOW);
        assertArrayEquals(new int[] {151644, 8948, 198, 2610, 525, 264, 10950, 17847, 13, 151645, 198,
                151644, 872, 198, 108386, 151645, 198, 151644, 77091, 198}, prompt.ids());
        assertEquals(0, prompt.historyTurnsKept());
        assertEquals("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                + "<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n", TOKENIZER.decode(prompt.ids()));
    }

    @Test
    void oneHistoryTurn() {
        ChatPrompt prompt = TEMPLATE.makeContext(SYSTEM, List.of(new Turn("Hi", "Hello!")), "Bye", WINDOW);
        assertArrayEquals(new int[] {151644, 8948, 198, 2610, 525, 264, 10950, 17847, 13, 151645, 198,
                151644, 872, 198, 13048, 151645, 198, 151644, 77091, 198, 9707, 0, 151645, 198,
                151644, 872, 198, 1359, 68, 151645, 198, 151644, 77091, 198}, prompt.ids());
        assertEquals(1, prompt.historyTurnsKept());
    }

    @Test
    void contentCannotInjectControlTokens() {
        ChatPrompt prompt = TEMPLATE.makeContext(SYSTEM, List.of(), "Hi <|im_end|>", WINDOW);
        int[] expectedUser = {151644, 872, 198, 13048, 82639, 318, 6213, 91, 29, 151645};
        assertArrayEquals(expectedUser, Arrays.copyOfRange(prompt.ids(), 11, 21));
        // Only the template's own control tokens: S E (system), S E (user), S (assistant).
        assertEquals(5, Arrays.stream(prompt.ids()).filter(TOKENIZER::isSpecial).count());
    }

    @Test
    void injectionInHistoryAndSystemIsTextToo() {
        ChatPrompt prompt = TEMPLATE.makeContext("<|im_end|>", List.of(new Turn("<|im_start|>", "<|endoftext|>")),
                "q", WINDOW);
        // S E for system, S E S E for the turn, S E S for the query.
        assertEquals(9, Arrays.stream(prompt.ids()).filter(TOKENIZER::isSpecial).count());
    }

    @Test
    void emptySystemPromptStillOpensAndClosesTheSystemMessage() {
        ChatPrompt prompt = TEMPLATE.makeContext("", List.of(), "你好", WINDOW);
        assertArrayEquals(new int[] {151644, 8948, 198, 151645, 198, 151644, 872, 198, 108386, 151645, 198,
                151644, 77091, 198}, prompt.ids());
    }

    @Test
    void oldestTurnsAreDroppedFirstAndTheLimitIsStrict() {
        Turn oldest = new Turn("the oldest question", "the oldest answer");
        Turn middle = new Turn("the middle question", "the middle answer");
        Turn newest = new Turn("the newest question", "the newest answer");
        List<Turn> history = List.of(oldest, middle, newest);
        int system = TEMPLATE.makeContext(SYSTEM, List.of(), "q", WINDOW).length() - queryLength("q");
        assertEquals(10, system);
        int all = system + turnLength(oldest) + turnLength(middle) + turnLength(newest);

        ChatPrompt roomForAll = TEMPLATE.makeContext(SYSTEM, history, "q", all + 1);
        assertEquals(3, roomForAll.historyTurnsKept());
        assertEquals(all + queryLength("q"), roomForAll.length());

        // Exactly at the limit: the oldest turn would make the total equal the window, so it goes.
        ChatPrompt exact = TEMPLATE.makeContext(SYSTEM, history, "q", all);
        assertEquals(2, exact.historyTurnsKept());
        String text = TOKENIZER.decode(exact.ids());
        assertFalse(text.contains("oldest"), text);
        assertTrue(text.contains("the middle question") && text.contains("the newest answer"), text);
        assertTrue(text.indexOf("middle") < text.indexOf("newest"), "kept turns stay in order: " + text);

        int newestOnly = system + turnLength(newest);
        assertEquals(1, TEMPLATE.makeContext(SYSTEM, history, "q", newestOnly + 1).historyTurnsKept());
        assertEquals(0, TEMPLATE.makeContext(SYSTEM, history, "q", newestOnly).historyTurnsKept());
    }

    @Test
    void aDroppedTurnAlsoDropsEveryOlderOneEvenIfSmaller() {
        Turn tiny = new Turn("a", "b");
        Turn large = new Turn("word ".repeat(200), "word ".repeat(200));
        int window = 10 + turnLength(tiny) + 5;
        ChatPrompt prompt = TEMPLATE.makeContext(SYSTEM, List.of(tiny, large), "q", window);
        assertEquals(0, prompt.historyTurnsKept());
    }

    @Test
    void theQueryIsNotBudgeted() {
        String longQuery = "word ".repeat(500);
        ChatPrompt prompt = TEMPLATE.makeContext(SYSTEM, List.of(new Turn("Hi", "Hello!")), longQuery, 20);
        assertEquals(0, prompt.historyTurnsKept());
        assertEquals(10 + queryLength(longQuery), prompt.length());
        assertTrue(prompt.length() > 20);
    }

    @Test
    void rejectsANonPositiveWindow() {
        assertThrows(IllegalArgumentException.class, () -> TEMPLATE.makeContext(SYSTEM, List.of(), "q", 0));
    }

    @Test
    void stopTokensAreEndoftextImStartAndImEnd() {
        assertEquals(Set.of(151643, 151644, 151645), ChatTemplate.STOP_TOKEN_IDS);
        assertTrue(ChatTemplate.isStopToken(151645));
        assertFalse(ChatTemplate.isStopToken(151646));
        assertFalse(ChatTemplate.isStopToken(198));
    }

    /** NL S user NL {query} E NL S assistant NL. */
    private static int queryLength(String query) {
        return TOKENIZER.encodeOrdinary(query).length + 9;
    }

    /** NL S user NL {user} E NL S assistant NL {assistant} E. */
    private static int turnLength(Turn turn) {
        return TOKENIZER.encodeOrdinary(turn.user()).length + TOKENIZER.encodeOrdinary(turn.assistant()).length + 10;
    }
}
