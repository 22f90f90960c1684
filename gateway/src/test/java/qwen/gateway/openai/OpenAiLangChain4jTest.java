package qwen.gateway.openai;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.openai.OpenAiChatModel;
import dev.langchain4j.model.openai.OpenAiStreamingChatModel;
import dev.langchain4j.model.output.FinishReason;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import java.net.URL;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * LangChain4j's OpenAI client, pointed at the gateway, gets replies. The demo model's text is noise,
 * so the test checks that a reply, a finish reason and the token usage arrive, not what they say.
 */
@QuarkusTest
@TestProfile(OpenAiTestProfile.class)
@Timeout(120)
class OpenAiLangChain4jTest {

    private static final int MAX_TOKENS = 6;

    @TestHTTPResource("/v1")
    URL baseUrl;

    @Test
    void chatModelGetsAReply() {
        OpenAiChatModel model = OpenAiChatModel.builder()
                .baseUrl(baseUrl.toString())
                .apiKey("any-key")
                .modelName("qwen")
                .maxTokens(MAX_TOKENS)
                .seed(11)
                .timeout(Duration.ofSeconds(60))
                .build();

        ChatResponse response = model.chat(SystemMessage.from("You are terse."), UserMessage.from("Hello"));

        assertNotNull(response.aiMessage().text());
        assertTrue(response.finishReason() == FinishReason.STOP || response.finishReason() == FinishReason.LENGTH,
                "finish reason " + response.finishReason());
        assertTrue(response.tokenUsage().inputTokenCount() > 0);
        int output = response.tokenUsage().outputTokenCount();
        assertTrue(output >= 1 && output <= MAX_TOKENS, "output tokens " + output);
        assertEquals(response.tokenUsage().inputTokenCount() + output, response.tokenUsage().totalTokenCount());
        assertTrue(response.id().startsWith("chatcmpl-"));
    }

    @Test
    void streamingChatModelGetsAReply() throws Exception {
        OpenAiStreamingChatModel model = OpenAiStreamingChatModel.builder()
                .baseUrl(baseUrl.toString())
                .apiKey("any-key")
                .modelName("qwen")
                .maxTokens(MAX_TOKENS)
                .temperature(0.0)
                .timeout(Duration.ofSeconds(60))
                .build();
        StringBuilder partial = new StringBuilder();
        CompletableFuture<ChatResponse> done = new CompletableFuture<>();

        model.chat("Hello", new StreamingChatResponseHandler() {
            @Override
            public void onPartialResponse(String text) {
                partial.append(text);
            }

            @Override
            public void onCompleteResponse(ChatResponse response) {
                done.complete(response);
            }

            @Override
            public void onError(Throwable error) {
                done.completeExceptionally(error);
            }
        });
        ChatResponse response = done.get(60, TimeUnit.SECONDS);

        assertNotNull(response.aiMessage().text());
        assertEquals(partial.toString(), response.aiMessage().text(), "the parts add up to the reply");
        assertTrue(response.finishReason() == FinishReason.STOP || response.finishReason() == FinishReason.LENGTH,
                "finish reason " + response.finishReason());
        assertNotNull(response.tokenUsage(), "usage arrives in the stream (include_usage)");
        int output = response.tokenUsage().outputTokenCount();
        assertTrue(output >= 1 && output <= MAX_TOKENS, "output tokens " + output);
        assertTrue(response.tokenUsage().inputTokenCount() > 0);
    }
}
