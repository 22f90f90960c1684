package qwen.gateway.openai;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import jakarta.inject.Inject;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import qwen.gateway.session.SessionMessage;
import qwen.gateway.session.SessionService;
import qwen.gateway.session.SessionState;
import qwen.gateway.shard.ModelCard;
import qwen.gateway.shard.PipelineService;

/**
 * Chat completions bound to a server-side session ({@code X-Session-Id} or {@code session_id}):
 * only the last user message is the new turn, the stored history makes the rest of the prompt, and
 * the session's KV is reused.
 */
@QuarkusTest
@TestProfile(OpenAiTestProfile.class)
@Timeout(120)
class OpenAiSessionTest {

    @Inject
    SessionService sessions;

    @Inject
    PipelineService pipelines;

    @TestHTTPResource("/")
    URL root;

    @Test
    void twoTurnsReuseTheSessionsKv() {
        String id = sessions.create(null, "openai two turns", Map.of()).session().id();

        JsonPath first = given().contentType(ContentType.JSON).header("X-Session-Id", id)
                .body(Map.of("messages", List.of(Map.of("role", "user", "content", "Hi")), "max_tokens", 4))
                .post("/v1/chat/completions").then().statusCode(200).extract().jsonPath();
        assertEquals(0, first.getInt("usage.prompt_tokens_details.cached_tokens"), "a new session holds no KV");

        // The client resends the whole conversation, as OpenAI clients do; only the last message is new.
        List<Map<String, Object>> conversation = List.of(
                Map.of("role", "system", "content", "ignored in session mode"),
                Map.of("role", "user", "content", "Hi"),
                Map.of("role", "assistant", "content", first.getString("choices[0].message.content")),
                Map.of("role", "user", "content", "And then?"));
        JsonPath second = given().contentType(ContentType.JSON)
                .body(Map.of("messages", conversation, "max_tokens", 4, "session_id", id))
                .post("/v1/chat/completions").then().statusCode(200).extract().jsonPath();
        int cached = second.getInt("usage.prompt_tokens_details.cached_tokens");
        assertTrue(cached > 0, "the second turn reuses the first turn's KV, cached_tokens " + cached);
        assertTrue(cached < second.getInt("usage.prompt_tokens"));
        assertTrue(second.getInt("usage.prompt_tokens") > first.getInt("usage.prompt_tokens"),
                "the stored history is part of the prompt");

        List<SessionMessage> history = sessions.get(id).session().messages();
        assertEquals(4, history.size());
        assertEquals("Hi", history.get(0).content());
        assertEquals("And then?", history.get(2).content());
        assertEquals(second.getString("choices[0].message.content").strip(), history.get(3).content());
    }

    @Test
    void badInputOnASessionChangesNothing() {
        String id = sessions.create(null, "openai bad input", Map.of()).session().id();
        given().contentType(ContentType.JSON).header("X-Session-Id", id)
                .body(Map.of("messages", List.of(Map.of("role", "user", "content", "Hi")), "max_tokens", 2))
                .post("/v1/chat/completions").then().statusCode(200);
        SessionState before = sessions.get(id);

        send(id, Map.of("messages", List.of(Map.of("role", "user", "content", "x")), "max_tokens", 0))
                .statusCode(400).body("error.param", equalTo("max_tokens"));
        send(id, Map.of("messages", List.of(Map.of("role", "user", "content", "x")), "temperature", -1))
                .statusCode(400).body("error.param", equalTo("temperature"));
        send(id, Map.of("messages", List.of(Map.of("role", "user", "content", "x")), "n", 2))
                .statusCode(400).body("error.param", equalTo("n"));
        send(id, Map.of("messages", List.of(Map.of("role", "user", "content", "x"),
                Map.of("role", "assistant", "content", "y")))).statusCode(400)
                .body("error.param", equalTo("messages[1].role"))
                .body("error.message", containsString("last message"));
        send(id, Map.of("messages", List.of(Map.of("role", "user", "content", "hello ".repeat(9000)))))
                .statusCode(400).body("error.code", equalTo("context_length_exceeded"));
        send(id, Map.of("messages", List.of(Map.of("role", "user", "content", "x")), "session_id", "other"))
                .statusCode(400).body("error.param", equalTo("session_id"));

        SessionState after = sessions.get(id);
        assertEquals(before.session().messages(), after.session().messages(), "history unchanged");
        assertEquals(before.session().updateTime(), after.session().updateTime());
        assertEquals("", after.runningRequestId());
    }

    @Test
    void clientThatDisconnectsStopsTheTurn() throws Exception {
        String id = sessions.create(null, "openai disconnect", Map.of()).session().id();
        readFirstChunkAndHangUp("X-Session-Id: " + id + "\r\nX-Request-Id: disconnect-" + id + "\r\n",
                () -> assertEquals("disconnect-" + id, sessions.get(id).runningRequestId(), "the turn runs"));

        // Hung up after the first chunk, long before 2000 tokens: the turn is cancelled, not committed.
        long deadline = System.nanoTime() + 20_000_000_000L;
        while (!sessions.get(id).runningRequestId().isEmpty() && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        SessionState state = sessions.get(id);
        assertEquals("", state.runningRequestId(), "the turn stopped");
        assertEquals(List.of(), state.session().messages(), "a cancelled turn commits nothing");

        // The session serves its next turn. The engine settles a cancelled sequence within a step,
        // and until then a new turn on it is refused with 409, so allow a moment.
        io.restassured.response.Response next = null;
        for (int attempt = 0; attempt < 50; attempt++) {
            next = given().contentType(ContentType.JSON).header("X-Session-Id", id)
                    .body(Map.of("messages", List.of(Map.of("role", "user", "content", "Hi")), "max_tokens", 2))
                    .post("/v1/chat/completions");
            if (next.statusCode() != 409) {
                break;
            }
            Thread.sleep(100);
        }
        assertEquals(200, next.statusCode(), next.asString());
        assertEquals(2, sessions.get(id).session().messages().size());
    }

    @Test
    void statelessStreamThatIsAbandonedFreesItsKv() throws Exception {
        long before = kvBytesInUse();
        readFirstChunkAndHangUp("X-Request-Id: abandoned-stateless\r\n",
                () -> assertTrue(eventually(() -> kvBytesInUse() > before), "the running request holds KV on the shard"));
        long deadline = System.nanoTime() + 20_000_000_000L;
        while (kvBytesInUse() > before && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertEquals(before, kvBytesInUse(), "the abandoned request's KV is released on the shard");
    }

    /** The role chunk leaves before the prompt's first step ends, so KV shows up a moment later. */
    private static boolean eventually(java.util.function.BooleanSupplier condition) {
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                return false;
            }
            Thread.onSpinWait();
        }
        return true;
    }

    private long kvBytesInUse() {
        return pipelines.liveModelCard().shards().stream().mapToLong(ModelCard.ShardDescription::kvBytesInUse).sum();
    }

    /**
     * Sends a streamed chat request for 2000 tokens over a raw socket, reads up to the first chunk,
     * runs {@code whileOpen}, and closes the connection.
     */
    private void readFirstChunkAndHangUp(String headers, Runnable whileOpen) throws Exception {
        String body = "{\"messages\":[{\"role\":\"user\",\"content\":\"Tell me a long story\"}],"
                + "\"max_tokens\":2000,\"stream\":true,\"seed\":7}";   // seeded: the noise model must not stop early
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        try (Socket socket = new Socket(root.getHost(), root.getPort())) {
            socket.setSoTimeout(30_000);
            OutputStream out = socket.getOutputStream();
            out.write(("POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    + headers + "Content-Length: " + bytes.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            out.write(bytes);
            out.flush();
            BufferedReader in = new BufferedReader(new InputStreamReader(socket.getInputStream(),
                    StandardCharsets.UTF_8));
            String status = in.readLine();
            assertTrue(status.startsWith("HTTP/1.1 200"), status);
            String line;
            while ((line = in.readLine()) != null && !line.contains("\"role\":\"assistant\"")) {
                // headers and chunk sizes until the first event
            }
            assertTrue(line != null, "the first chunk arrived");
            whileOpen.run();
        }
    }

    private static io.restassured.response.ValidatableResponse send(String sessionId, Map<String, Object> body) {
        return given().contentType(ContentType.JSON).header("X-Session-Id", sessionId).body(body)
                .post("/v1/chat/completions").then().log().ifValidationFails();
    }
}
