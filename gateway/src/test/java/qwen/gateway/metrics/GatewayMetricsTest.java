package qwen.gateway.metrics;

import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import java.net.URI;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import qwen.gateway.openai.OpenAiTestProfile;

/**
 * The gateway's /q/metrics move by exactly what a chat did: its prompt and output tokens, one
 * request under its finish reason, one first-token time, one inter-token gap per later token, and
 * the load gauges back at zero once it has ended.
 */
@QuarkusTest
@TestProfile(OpenAiTestProfile.class)
@Timeout(120)
class GatewayMetricsTest {

    @TestHTTPResource("/q/metrics")
    URI metrics;

    @Test
    void aChatMovesTheCountersHistogramsAndGaugesByItsOwnFigures() {
        PrometheusText before = PrometheusText.scrape(metrics);
        long t0 = System.nanoTime();
        JsonPath body = given().contentType(ContentType.JSON)
                .body(Map.of("messages", List.of(Map.of("role", "user", "content", "Count to ten")),
                        "max_tokens", 6, "temperature", 0, "logprobs", true))
                .post("/v1/chat/completions").then().statusCode(200).extract().jsonPath();
        double wallSeconds = (System.nanoTime() - t0) / 1e9;
        PrometheusText after = PrometheusText.scrape(metrics);

        int prompt = body.getInt("usage.prompt_tokens");
        int completion = body.getInt("usage.completion_tokens");
        String finish = body.getString("choices[0].finish_reason");
        // Tokens that came out as text; an end token that stopped the reply is counted but has no text.
        int streamed = body.getList("choices[0].logprobs.content").size();

        assertEquals(prompt, delta(before, after, "qwen_gateway_prompt_tokens_total"));
        assertEquals(0, delta(before, after, "qwen_gateway_prompt_cached_tokens_total"));
        assertEquals(completion, delta(before, after, "qwen_gateway_output_tokens_total"));
        assertEquals(1, delta(before, after, "qwen_gateway_requests_total", "outcome=\"" + finish + "\""));
        assertEquals(1, delta(before, after, "qwen_gateway_requests_total"), "one request, one outcome");
        assertEquals(1, delta(before, after, "qwen_gateway_request_output_tokens_count"));
        assertEquals(completion, delta(before, after, "qwen_gateway_request_output_tokens_sum"));

        assertEquals(1, delta(before, after, "qwen_gateway_time_to_first_token_seconds_count"));
        double firstToken = delta(before, after, "qwen_gateway_time_to_first_token_seconds_sum");
        assertTrue(firstToken > 0 && firstToken <= wallSeconds, "first token after " + firstToken + " s of " + wallSeconds);
        assertEquals(1, delta(before, after, "qwen_gateway_time_to_first_token_seconds_bucket", "le=\"+Inf\""));
        assertEquals(streamed - 1, delta(before, after, "qwen_gateway_inter_token_latency_seconds_count"));
        double gaps = delta(before, after, "qwen_gateway_inter_token_latency_seconds_sum");
        assertTrue(gaps >= 0 && firstToken + gaps <= wallSeconds, "gaps " + gaps + " s");

        assertEquals(0, after.value("qwen_gateway_requests_in_flight"));
        assertEquals(0, after.value("qwen_gateway_active_sequences"));
        assertEquals(0, after.value("qwen_gateway_queue_depth"));
    }

    private static double delta(PrometheusText before, PrometheusText after, String name) {
        return delta(before, after, name, "");
    }

    private static double delta(PrometheusText before, PrometheusText after, String name, String labels) {
        double was = before.value(name, labels);
        return after.value(name, labels) - (Double.isNaN(was) ? 0 : was);
    }
}
