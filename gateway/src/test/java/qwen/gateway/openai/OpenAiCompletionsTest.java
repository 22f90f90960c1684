package qwen.gateway.openai;

import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.assertEquals;
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

/** {@code POST /v1/completions}: raw prompts as text and as token ids, legacy logprobs, streaming. */
@QuarkusTest
@TestProfile(OpenAiTestProfile.class)
@Timeout(120)
class OpenAiCompletionsTest {

    @Test
    void textPromptIsSentWithoutChatMl() {
        JsonPath body = post(Map.of("model", "x", "prompt", "Once upon a time", "max_tokens", 5, "seed", 3));
        assertTrue(body.getString("id").startsWith("cmpl-"));
        assertEquals("text_completion", body.getString("object"));
        assertEquals(OpenAiChatCompletionsTest.servedModel(), body.getString("model"));
        assertNotNull(body.getString("choices[0].text"));
        assertTrue(body.getMap("choices[0]").containsKey("logprobs"));
        assertNull(body.get("choices[0].logprobs"));
        int promptTokens = given().contentType(ContentType.JSON).body(Map.of("prompt", "Once upon a time"))
                .post("/tokenize").then().statusCode(200).extract().jsonPath().getInt("count");
        assertEquals(promptTokens, body.getInt("usage.prompt_tokens"), "the raw prompt, no ChatML framing");
        int completion = body.getInt("usage.completion_tokens");
        assertTrue(completion >= 1 && completion <= 5);
        assertEquals(promptTokens + completion, body.getInt("usage.total_tokens"));
    }

    @Test
    void tokenIdPromptWithLegacyLogprobs() {
        List<Integer> ids = List.of(9707, 11, 1879, 0);
        JsonPath body = post(Map.of("prompt", ids, "max_tokens", 4, "logprobs", 2, "temperature", 0));
        assertEquals(4, body.getInt("usage.prompt_tokens"));
        String finish = body.getString("choices[0].finish_reason");
        int completion = body.getInt("usage.completion_tokens");
        List<String> tokens = body.getList("choices[0].logprobs.tokens");
        List<Float> logprobs = body.getList("choices[0].logprobs.token_logprobs", Float.class);
        List<Map<String, Float>> top = body.getList("choices[0].logprobs.top_logprobs");
        List<Integer> offsets = body.getList("choices[0].logprobs.text_offset");
        assertEquals(finish.equals("length") ? completion : completion - 1, tokens.size());
        assertEquals(tokens.size(), logprobs.size());
        assertEquals(tokens.size(), top.size());
        assertEquals(tokens.size(), offsets.size());
        assertEquals(0, offsets.getFirst(), "offsets start at the completion's first character");
        assertTrue(logprobs.stream().allMatch(p -> p <= 0f));
        assertTrue(top.stream().allMatch(alternatives -> !alternatives.isEmpty() && alternatives.size() <= 2));

        // One-element arrays are the same prompt.
        JsonPath nested = post(Map.of("prompt", List.of(ids), "max_tokens", 4, "temperature", 0));
        assertEquals(body.getString("choices[0].text"), nested.getString("choices[0].text"));
    }

    @Test
    void streamedCompletionEndsWithFinishUsageAndDone() {
        Response response = given().contentType(ContentType.JSON)
                .body(Map.of("prompt", "Hello", "max_tokens", 6, "stream", true, "temperature", 0,
                        "stream_options", Map.of("include_usage", true)))
                .post("/v1/completions");
        assertEquals(200, response.statusCode(), response.asString());
        assertTrue(response.contentType().startsWith("text/event-stream"));
        List<JsonPath> chunks = OpenAiSse.events(response.asString());
        JsonPath usage = chunks.getLast();
        assertEquals(List.of(), usage.getList("choices"));
        JsonPath finish = chunks.get(chunks.size() - 2);
        assertNotNull(finish.getString("choices[0].finish_reason"));
        StringBuilder text = new StringBuilder();
        for (JsonPath chunk : chunks.subList(0, chunks.size() - 2)) {
            assertEquals("text_completion", chunk.getString("object"));
            text.append(chunk.getString("choices[0].text"));
        }
        JsonPath whole = post(Map.of("prompt", "Hello", "max_tokens", 6, "temperature", 0));
        assertEquals(whole.getString("choices[0].text"), text.toString());
        assertEquals(whole.getInt("usage.completion_tokens"), usage.getInt("usage.completion_tokens"));
    }

    private static JsonPath post(Map<String, Object> body) {
        Response response = given().contentType(ContentType.JSON).body(body).post("/v1/completions");
        assertEquals(200, response.statusCode(), response.asString());
        return response.jsonPath();
    }
}
