package qwen.gateway.openai;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** {@code GET /v1/models}, and vLLM's {@code POST /tokenize} and {@code POST /detokenize}. */
@QuarkusTest
@TestProfile(OpenAiTestProfile.class)
@Timeout(60)
class OpenAiModelsAndTokensTest {

    /** The demo shard's model id and Qwen's context length (service DemoModel.TINY). */
    private static final String DEMO_MODEL = "qwen-demo-tiny";
    private static final int DEMO_SEQ_LENGTH = 8192;

    @Test
    void modelsListsTheServedModel() {
        JsonPath body = given().get("/v1/models").then().statusCode(200).contentType(ContentType.JSON)
                .extract().jsonPath();
        assertEquals("list", body.getString("object"));
        assertEquals(1, body.getList("data").size());
        assertEquals(DEMO_MODEL, body.getString("data[0].id"));
        assertEquals("model", body.getString("data[0].object"));
        assertTrue(body.getLong("data[0].created") > 1_600_000_000L);
        assertEquals("qwen-serve", body.getString("data[0].owned_by"));
        assertEquals(DEMO_SEQ_LENGTH, body.getInt("data[0].max_model_len"));

        given().get("/v1/models/" + DEMO_MODEL).then().statusCode(200).body("id", equalTo(DEMO_MODEL));
        given().get("/v1/models/gpt-4").then().statusCode(404)
                .body("error.type", equalTo("not_found_error"))
                .body("error.message", containsString("gpt-4"));
    }

    @Test
    void chineseTextRoundTrips() {
        String text = "你好，世界！通义千问 tokenizes 中文.";
        JsonPath tokens = given().contentType(ContentType.JSON).body(Map.of("prompt", text))
                .post("/tokenize").then().statusCode(200).extract().jsonPath();
        List<Integer> ids = tokens.getList("tokens");
        assertEquals(ids.size(), tokens.getInt("count"));
        assertEquals(DEMO_SEQ_LENGTH, tokens.getInt("max_model_len"));
        assertTrue(ids.size() > 5 && ids.size() < text.length());

        given().contentType(ContentType.JSON).body(Map.of("tokens", ids))
                .post("/detokenize").then().statusCode(200).body("prompt", equalTo(text));
    }

    @Test
    void knownIdsOfQwen() {
        // SPEC 5.2: "你好" is one token, 108386; special-token text is recognised in a raw prompt.
        given().contentType(ContentType.JSON).body(Map.of("prompt", "你好<|im_end|>"))
                .post("/tokenize").then().statusCode(200).body("tokens", equalTo(List.of(108386, 151645)));
        given().contentType(ContentType.JSON).body(Map.of("tokens", List.of(151644, 872, 198, 108386)))
                .post("/detokenize").then().statusCode(200).body("prompt", equalTo("<|im_start|>user\n你好"));
    }

    @Test
    void messagesTokenizeToTheChatMlPrompt() {
        // SPEC 5.2's example: query "你好", no history, default system prompt.
        List<Integer> expected = List.of(151644, 8948, 198, 2610, 525, 264, 10950, 17847, 13, 151645, 198,
                151644, 872, 198, 108386, 151645, 198, 151644, 77091, 198);
        given().contentType(ContentType.JSON)
                .body(Map.of("messages", List.of(Map.of("role", "user", "content", "你好")),
                        "add_generation_prompt", true))
                .post("/tokenize").then().statusCode(200)
                .body("tokens", equalTo(expected))
                .body("count", equalTo(20));
    }

    @Test
    void badTokenizeRequestsAreRefused() {
        given().contentType(ContentType.JSON).body(Map.of("tokens", List.of(1, 151851)))
                .post("/detokenize").then().statusCode(400)
                .body("error.type", equalTo("invalid_request_error"))
                .body("error.param", equalTo("tokens[1]"))
                .body("error.message", containsString("151851"));
        given().contentType(ContentType.JSON).body(Map.of("tokens", List.of(-1)))
                .post("/detokenize").then().statusCode(400).body("error.param", equalTo("tokens[0]"));
        given().contentType(ContentType.JSON)
                .body(Map.of("prompt", "hi", "messages", List.of(Map.of("role", "user", "content", "hi"))))
                .post("/tokenize").then().statusCode(400)
                .body("error.message", containsString("exactly one of"));
        given().contentType(ContentType.JSON).body(Map.of())
                .post("/tokenize").then().statusCode(400).body("error.message", containsString("exactly one of"));
    }
}
