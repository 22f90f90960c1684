package qwen.gateway.chat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import qwen.gateway.chat.ChatMessage.Role;

/** Conversation.fromMessages: the shape of a message list, and one message per broken rule. */
class ConversationFromMessagesTest {

    private static ChatMessage m(Role role, String content) {
        return new ChatMessage(role, content);
    }

    private static void assertInvalid(String message, List<ChatMessage> messages) {
        GatewayException e = assertThrows(GatewayException.class, () -> Conversation.fromMessages(messages, null));
        assertEquals(GatewayException.Kind.INVALID_ARGUMENT, e.kind());
        assertEquals(message, e.getMessage());
    }

    @Test
    void oneUserMessageGetsTheDefaultSystemPrompt() {
        Conversation c = Conversation.fromMessages(List.of(m(Role.USER, "Hi")), null);
        assertEquals(new Conversation(ChatTemplate.DEFAULT_SYSTEM_PROMPT, List.of(), "Hi"), c);
    }

    @Test
    void systemThenAlternatingTurns() {
        Conversation c = Conversation.fromMessages(List.of(m(Role.SYSTEM, "Be brief."), m(Role.USER, "Hi"),
                m(Role.ASSISTANT, "Hello!"), m(Role.USER, "Bye")), null);
        assertEquals(new Conversation("Be brief.", List.of(new Turn("Hi", "Hello!")), "Bye"), c);
    }

    @Test
    void overrideReplacesTheSystemMessageOrTheDefault() {
        assertEquals("Override", Conversation.fromMessages(
                List.of(m(Role.SYSTEM, "Be brief."), m(Role.USER, "Hi")), "Override").systemPrompt());
        assertEquals("Override", Conversation.fromMessages(List.of(m(Role.USER, "Hi")), "Override").systemPrompt());
        assertEquals("", Conversation.fromMessages(List.of(m(Role.USER, "Hi")), "").systemPrompt());
    }

    @Test
    void emptySystemAndAssistantContentAreAllowed() {
        Conversation c = Conversation.fromMessages(List.of(m(Role.SYSTEM, null), m(Role.USER, "Hi"),
                m(Role.ASSISTANT, ""), m(Role.USER, "Again")), null);
        assertEquals(new Conversation("", List.of(new Turn("Hi", "")), "Again"), c);
    }

    @Test
    void emptyList() {
        assertInvalid("messages must hold at least one user message", List.of());
        assertInvalid("messages must hold at least one user message", null);
    }

    @Test
    void onlySystem() {
        assertInvalid("messages holds only a system message; the last message must be from the user",
                List.of(m(Role.SYSTEM, "x")));
    }

    @Test
    void mustEndWithUser() {
        assertInvalid("the last message must be from the user, got assistant",
                List.of(m(Role.USER, "Hi"), m(Role.ASSISTANT, "Hello")));
    }

    @Test
    void mustStartWithUserAfterSystem() {
        assertInvalid("messages[1] must be a user message, got assistant: after the optional system message, user"
                + " and assistant messages alternate, starting with user",
                List.of(m(Role.SYSTEM, "x"), m(Role.ASSISTANT, "Hello"), m(Role.USER, "Hi")));
    }

    @Test
    void twoUsersInARow() {
        assertInvalid("messages[1] must be an assistant message, got user: after the optional system message, user"
                + " and assistant messages alternate, starting with user",
                List.of(m(Role.USER, "Hi"), m(Role.USER, "Hi again")));
    }

    @Test
    void systemLater() {
        assertInvalid("messages[2] is a system message; only the first message may be one",
                List.of(m(Role.USER, "Hi"), m(Role.ASSISTANT, "Hello"), m(Role.SYSTEM, "x"), m(Role.USER, "Hi")));
    }

    @Test
    void emptyUserContent() {
        assertInvalid("messages[0] is a user message with empty content", List.of(m(Role.USER, "")));
        assertInvalid("messages[2] is a user message with empty content",
                List.of(m(Role.USER, "Hi"), m(Role.ASSISTANT, "Hello"), m(Role.USER, null)));
    }

    @Test
    void missingRoleOrMessage() {
        assertInvalid("messages[0] has no role", List.of(m(null, "Hi")));
        assertInvalid("messages[1] has no role", Arrays.asList(m(Role.USER, "Hi"), null));
    }
}
