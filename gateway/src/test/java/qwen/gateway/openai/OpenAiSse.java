package qwen.gateway.openai;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.restassured.path.json.JsonPath;
import java.util.ArrayList;
import java.util.List;

/** Reads a Server-Sent Events body as the OpenAI clients do: {@code data:} lines, {@code [DONE]} last. */
final class OpenAiSse {

    private OpenAiSse() {
    }

    /**
     * The JSON payload of every event before {@code data: [DONE]}; fails unless the body ends with
     * exactly one {@code [DONE]} and every event is a single {@code data: } line.
     */
    static List<JsonPath> events(String body) {
        List<String> data = new ArrayList<>();
        for (String event : body.split("\n\n")) {
            if (event.isBlank()) {
                continue;
            }
            assertTrue(event.startsWith("data: ") && !event.contains("\n"),
                    "every event is one 'data: ' line, got: " + event);
            data.add(event.substring("data: ".length()));
        }
        assertTrue(!data.isEmpty(), "the stream has events");
        assertEquals("[DONE]", data.getLast(), "the stream ends with data: [DONE]");
        assertEquals(1, data.stream().filter("[DONE]"::equals).count(), "one [DONE]");
        List<JsonPath> chunks = new ArrayList<>();
        for (String json : data.subList(0, data.size() - 1)) {
            chunks.add(new JsonPath(json));
        }
        return chunks;
    }
}
