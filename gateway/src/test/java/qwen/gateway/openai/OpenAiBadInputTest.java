package qwen.gateway.openai;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.nullValue;

import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import io.restassured.response.ValidatableResponse;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Every refusal answers with OpenAI's error JSON, the right status, the field at fault and a
 * message that names the problem.
 */
@QuarkusTest
@TestProfile(OpenAiTestProfile.class)
@Timeout(60)
class OpenAiBadInputTest {

    private static final List<Map<String, Object>> HELLO = List.of(Map.of("role", "user", "content", "Hello"));

    @Test
    void messagesMustBeUsable() {
        invalidChat(Map.of("messages", List.of()), "messages", "at least one message");
        invalidChat(Map.of(), "messages", "at least one message");
        invalidChat(Map.of("messages", List.of(Map.of("role", "tool", "content", "x"))),
                "messages[0].role", "\"tool\"");
        invalidChat(Map.of("messages", List.of(Map.of("content", "x"))), "messages[0].role", "missing");
        invalidChat(Map.of("messages", List.of(Map.of("role", "user", "content",
                        List.of(Map.of("type", "image_url", "image_url", Map.of("url", "http://x")))))),
                "messages[0].content[0]", "image_url");
        invalidChat(Map.of("messages", List.of(Map.of("role", "user", "content", 42))),
                "messages[0].content", "string or an array");
        chat(Map.of("messages", List.of(Map.of("role", "user", "content", "Hi"),
                Map.of("role", "assistant", "content", "Hello")))).statusCode(400)
                .body("error.type", equalTo("invalid_request_error"))
                .body("error.message", containsString("last message must be from the user"));
    }

    @Test
    void parametersMustBeInRange() {
        invalidChat(with("max_tokens", 0), "max_tokens", "at least 1");
        invalidChat(with("max_tokens", -3), "max_tokens", "at least 1");
        invalidChat(with("max_completion_tokens", 0), "max_completion_tokens", "at least 1");
        invalidChat(with("temperature", -0.5), "temperature", ">= 0");
        invalidChat(with("top_p", 0), "top_p", "(0, 1]");
        invalidChat(with("top_p", 1.5), "top_p", "(0, 1]");
        invalidChat(with("n", 2), "n", "n must be 1");
        invalidChat(with("top_k", -2), "top_k", "top_k");
        invalidChat(with("repetition_penalty", 0), "repetition_penalty", "> 0");
        invalidChat(with("top_logprobs", 2), "top_logprobs", "logprobs");
        invalidChat(with("stop", List.of("ok", "")), "stop[1]", "non-empty");
    }

    @Test
    void malformedOrMistypedJsonIsAnOpenAiError() {
        given().contentType(ContentType.JSON).body("{\"messages\": [").post("/v1/chat/completions")
                .then().statusCode(400).contentType(ContentType.JSON)
                .body("error.type", equalTo("invalid_request_error"))
                .body("error.message", containsString("not valid JSON"))
                .body("error.param", nullValue());
        given().contentType(ContentType.JSON).body("{\"messages\": [], \"max_tokens\": \"many\"}")
                .post("/v1/chat/completions").then().statusCode(400)
                .body("error.param", equalTo("max_tokens"))
                .body("error.message", containsString("an integer"));
        given().contentType(ContentType.JSON).body("").post("/v1/chat/completions")
                .then().statusCode(400).body("error.message", containsString("body is empty"));
        given().contentType(ContentType.TEXT).body("hello").post("/v1/chat/completions")
                .then().statusCode(415).contentType(ContentType.JSON)
                .body("error.message", containsString("application/json"))
                .body("error.type", equalTo("invalid_request_error"));
        given().get("/v1/chat/completions").then().statusCode(405).contentType(ContentType.JSON)
                .body("error.message", containsString("405"));
        given().get("/v1/embeddings").then().statusCode(404).contentType(ContentType.JSON)
                .body("error.type", equalTo("not_found_error"));
    }

    @Test
    void promptsLongerThanTheContextAreRefused() {
        String longText = "hello ".repeat(9000);
        chat(Map.of("messages", List.of(Map.of("role", "user", "content", longText)))).statusCode(400)
                .body("error.code", equalTo("context_length_exceeded"))
                .body("error.param", equalTo("messages"))
                .body("error.message", containsString("maximum context length is 8192 tokens"));
        completion(Map.of("prompt", Collections.nCopies(8192, 15))).statusCode(400)
                .body("error.code", equalTo("context_length_exceeded"))
                .body("error.param", equalTo("prompt"));
    }

    @Test
    void completionPromptsAreChecked() {
        completion(Map.of("prompt", List.of(1, 151936))).statusCode(400)
                .body("error.param", equalTo("prompt[1]"))
                .body("error.message", containsString("151936"));
        // Past the tokenizer's 151851 ids the model's padding rows decode to nothing: refused too.
        completion(Map.of("prompt", List.of(151851))).statusCode(400).body("error.param", equalTo("prompt[0]"));
        completion(Map.of("prompt", List.of(-1))).statusCode(400).body("error.param", equalTo("prompt[0]"));
        completion(Map.of("prompt", List.of("one", "two"))).statusCode(400)
                .body("error.message", containsString("one prompt per request"));
        completion(Map.of("prompt", "")).statusCode(400).body("error.param", equalTo("prompt"));
        completion(Map.of("max_tokens", 3)).statusCode(400).body("error.message", containsString("prompt is required"));
        completion(Map.of("prompt", "hi", "echo", true)).statusCode(400).body("error.param", equalTo("echo"));
        completion(Map.of("prompt", "hi", "n", 3)).statusCode(400).body("error.param", equalTo("n"));
        completion(Map.of("prompt", "hi", "logprobs", 21)).statusCode(400).body("error.param", equalTo("logprobs"));
    }

    @Test
    void unknownSessionIsNotFound() {
        given().contentType(ContentType.JSON).header("X-Session-Id", "no-such-session")
                .body(Map.of("messages", HELLO)).post("/v1/chat/completions")
                .then().statusCode(404)
                .body("error.type", equalTo("not_found_error"))
                .body("error.message", containsString("no-such-session"));
        chat(Map.of("messages", HELLO, "session_id", "no-such-session", "stream", true)).statusCode(404)
                .body("error.type", equalTo("not_found_error"));
    }

    private static Map<String, Object> with(String key, Object value) {
        Map<String, Object> body = new HashMap<>(Map.of("messages", HELLO, "max_tokens", 2));
        body.put(key, value);
        return body;
    }

    private static void invalidChat(Map<String, Object> body, String param, String messagePart) {
        chat(body).statusCode(400).contentType(ContentType.JSON)
                .body("error.type", equalTo("invalid_request_error"))
                .body("error.param", equalTo(param))
                .body("error.message", containsString(messagePart));
    }

    static ValidatableResponse chat(Map<String, Object> body) {
        return given().contentType(ContentType.JSON).body(body).post("/v1/chat/completions").then();
    }

    private static ValidatableResponse completion(Map<String, Object> body) {
        return given().contentType(ContentType.JSON).body(new HashMap<>(body)).post("/v1/completions").then();
    }
}
