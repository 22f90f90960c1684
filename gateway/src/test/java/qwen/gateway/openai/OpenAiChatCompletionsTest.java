package qwen.gateway.openai;

import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import io.restassured.response.Response;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@code POST /v1/chat/completions} against a real shard with the random TINY demo model: the
 * shapes of whole and streamed answers, usage counts, logprobs. The demo model's text is noise, so
 * the tests assert on shapes and counts, never on words.
 */
@QuarkusTest
@TestProfile(OpenAiTestProfile.class)
@Timeout(120)
class OpenAiChatCompletionsTest {

    private static final List<Map<String, Object>> HELLO = List.of(Map.of("role", "user", "content", "Hello"));

    @Test
    void wholeAnswerHasOpenAiShapeAndConsistentUsage() {
        JsonPath body = post(Map.of("model", "anything", "messages", HELLO, "max_tokens", 8, "seed", 7,
                "logprobs", true));

        assertTrue(body.getString("id").startsWith("chatcmpl-"), body.prettify());
        assertEquals("chat.completion", body.getString("object"));
        assertTrue(body.getLong("created") > 1_600_000_000L);
        assertEquals(servedModel(), body.getString("model"), "the served model, whatever the request named");
        assertEquals(1, body.getList("choices").size());
        assertEquals(0, body.getInt("choices[0].index"));
        assertEquals("assistant", body.getString("choices[0].message.role"));
        assertNotNull(body.getString("choices[0].message.content"));
        String finish = body.getString("choices[0].finish_reason");
        assertTrue(List.of("stop", "length").contains(finish), finish);

        int prompt = body.getInt("usage.prompt_tokens");
        int completion = body.getInt("usage.completion_tokens");
        assertEquals(promptTokens(HELLO), prompt, "prompt_tokens counts the ChatML prompt /tokenize shows");
        assertEquals(prompt + completion, body.getInt("usage.total_tokens"));
        assertEquals(0, body.getInt("usage.prompt_tokens_details.cached_tokens"), "stateless: nothing cached");
        assertTrue(completion >= 1 && completion <= 8, "completion_tokens " + completion);
        // One logprobs entry per generated id; an end token that stopped the reply is counted in
        // completion_tokens but is not part of the reply.
        int generated = body.getList("choices[0].logprobs.content").size();
        assertEquals(finish.equals("length") ? completion : completion - 1, generated);
    }

    @Test
    void logprobsAndLeaveOutShapes() {
        JsonPath without = post(Map.of("messages", HELLO, "max_tokens", 2));
        assertTrue(without.getMap("choices[0]").containsKey("logprobs"), "logprobs is present as null");
        assertNull(without.get("choices[0].logprobs"));

        JsonPath body = post(Map.of("messages", HELLO, "max_tokens", 4, "logprobs", true, "top_logprobs", 3));
        List<Map<String, Object>> content = body.getList("choices[0].logprobs.content");
        assertFalse(content.isEmpty());
        for (int i = 0; i < content.size(); i++) {
            String at = "choices[0].logprobs.content[" + i + "].";
            assertNotNull(body.getString(at + "token"));
            assertTrue(body.getFloat(at + "logprob") <= 0f, "a logprob is <= 0");
            List<Integer> bytes = body.getList(at + "bytes");
            assertTrue(bytes.stream().allMatch(b -> b >= 0 && b <= 255), "bytes are 0..255: " + bytes);
            assertEquals(3, body.getList(at + "top_logprobs").size(), "top_logprobs: 3 alternatives");
            assertNotNull(body.getString(at + "top_logprobs[0].token"));
            assertTrue(body.getFloat(at + "top_logprobs[0].logprob") <= 0f);
            assertNotNull(body.getList(at + "top_logprobs[0].bytes"));
        }
    }

    @Test
    void contentAsTextPartsIsTheSameMessage() {
        List<Map<String, Object>> parts = List.of(Map.of("role", "user", "content",
                List.of(Map.of("type", "text", "text", "Hel"), Map.of("type", "text", "text", "lo"))));
        JsonPath body = post(Map.of("messages", parts, "max_tokens", 1, "user", "ignored-end-user",
                "some_future_field", Map.of("x", 1)));
        assertEquals(promptTokens(List.of(Map.of("role", "user", "content", "Hel\nlo"))),
                body.getInt("usage.prompt_tokens"), "text parts are joined with a newline; unknown fields ignored");
    }

    @Test
    void streamSendsRoleContentFinishUsageAndDone() {
        Response response = given().contentType(ContentType.JSON)
                .body(Map.of("messages", HELLO, "max_tokens", 8, "stream", true,
                        "stream_options", Map.of("include_usage", true), "temperature", 0))
                .post("/v1/chat/completions");
        assertEquals(200, response.statusCode(), response.asString());
        assertTrue(response.contentType().startsWith("text/event-stream"), response.contentType());

        List<JsonPath> chunks = OpenAiSse.events(response.asString());
        JsonPath first = chunks.getFirst();
        String id = first.getString("id");
        assertTrue(id.startsWith("chatcmpl-"));
        assertEquals("chat.completion.chunk", first.getString("object"));
        assertEquals(Map.of("role", "assistant", "content", ""), first.getMap("choices[0].delta"));

        JsonPath usage = chunks.getLast();
        assertEquals(List.of(), usage.getList("choices"), "the usage chunk has empty choices");
        JsonPath last = chunks.get(chunks.size() - 2);
        String finish = last.getString("choices[0].finish_reason");
        assertTrue(List.of("stop", "length").contains(finish), finish);
        assertEquals(Map.of(), last.getMap("choices[0].delta"));

        StringBuilder text = new StringBuilder();
        for (JsonPath chunk : chunks.subList(1, chunks.size() - 2)) {
            assertEquals(id, chunk.getString("id"), "every chunk carries the same id");
            assertNull(chunk.get("choices[0].finish_reason"));
            text.append(chunk.getString("choices[0].delta.content"));
        }
        int completion = usage.getInt("usage.completion_tokens");
        assertTrue(completion >= 1 && completion <= 8);
        assertEquals(usage.getInt("usage.prompt_tokens") + completion, usage.getInt("usage.total_tokens"));
        if (finish.equals("length")) {
            assertEquals(8, completion, "finish_reason length: max_tokens ids were generated");
        }

        // Greedy decoding: the streamed text is the text of the same request answered whole.
        JsonPath whole = post(Map.of("messages", HELLO, "max_tokens", 8, "temperature", 0));
        assertEquals(whole.getString("choices[0].message.content"), text.toString());
        assertEquals(completion, whole.getInt("usage.completion_tokens"));
    }

    @Test
    void streamWithoutIncludeUsageHasNoUsageChunk() {
        String body = given().contentType(ContentType.JSON)
                .body(Map.of("messages", HELLO, "max_tokens", 3, "stream", true))
                .post("/v1/chat/completions").then().statusCode(200).extract().asString();
        List<JsonPath> chunks = OpenAiSse.events(body);
        assertNotNull(chunks.getLast().getString("choices[0].finish_reason"));
        assertTrue(chunks.stream().noneMatch(chunk -> chunk.get("usage") != null));
    }

    static JsonPath post(Map<String, Object> body) {
        Response response = given().contentType(ContentType.JSON).body(body).post("/v1/chat/completions");
        assertEquals(200, response.statusCode(), response.asString());
        assertTrue(response.contentType().startsWith("application/json"), response.contentType());
        return response.jsonPath();
    }

    static int promptTokens(List<Map<String, Object>> messages) {
        return given().contentType(ContentType.JSON).body(Map.of("messages", messages))
                .post("/tokenize").then().statusCode(200).extract().jsonPath().getInt("count");
    }

    static String servedModel() {
        return given().get("/v1/models").then().statusCode(200).extract().jsonPath().getString("data[0].id");
    }
}
