package qwen.gateway.access;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.not;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import grpc.health.v1.HealthGrpc;
import grpc.health.v1.HealthOuterClass.HealthCheckRequest;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.MetadataUtils;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.eclipse.microprofile.config.ConfigProvider;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import qwen.proto.chat.v1.ChatServiceGrpc;
import qwen.proto.chat.v1.GetModelInfoRequest;

/**
 * With keys configured, the running gateway refuses HTTP requests without a valid
 * {@code Authorization: Bearer} key with 401 and gRPC calls with UNAUTHENTICATED, while health and
 * metrics stay open for probes and scrapers.
 */
@QuarkusTest
@TestProfile(ApiKeysProfile.class)
@Timeout(120)
class ApiKeysTest {

    private static final Map<String, Object> CHAT = Map.of(
            "messages", List.of(Map.of("role", "user", "content", "Hi")), "max_tokens", 2);

    private ManagedChannel channel;

    @BeforeEach
    void connect() {
        int port = ConfigProvider.getConfig().getValue("quarkus.grpc.server.test-port", Integer.class);
        channel = ManagedChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().build();
    }

    @AfterEach
    void disconnect() throws InterruptedException {
        channel.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
    }

    @Test
    void httpWithoutAValidKeyIs401InOpenAiShape() {
        given().get("/v1/models").then().statusCode(401)
                .header("WWW-Authenticate", "Bearer")
                .body("error.code", equalTo("missing_api_key"))
                .body("error.type", equalTo("invalid_request_error"));
        given().header("Authorization", "Bearer sk-wrong").contentType(ContentType.JSON).body(CHAT)
                .post("/v1/chat/completions").then().statusCode(401)
                .body("error.code", equalTo("invalid_api_key"))
                .body("error.message", not(containsString("sk-wrong")));
        given().header("Authorization", "Bearer " + ApiKeysProfile.KEY).get("/v1/models").then().statusCode(200);
        given().header("Authorization", "Bearer " + ApiKeysProfile.OTHER_KEY).contentType(ContentType.JSON).body(CHAT)
                .post("/v1/chat/completions").then().statusCode(200).body("object", equalTo("chat.completion"));
    }

    @Test
    void healthAndMetricsNeedNoKey() {
        given().get("/q/health/live").then().statusCode(200);
        given().get("/q/health/ready").then().statusCode(200);
        given().get("/q/metrics").then().statusCode(200);
        assertEquals("SERVING", HealthGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS)
                .check(HealthCheckRequest.getDefaultInstance()).getStatus().name());
    }

    @Test
    void grpcWithoutAValidKeyIsUnauthenticated() {
        ChatServiceGrpc.ChatServiceBlockingStub anonymous = ChatServiceGrpc.newBlockingStub(channel)
                .withDeadlineAfter(30, TimeUnit.SECONDS);
        StatusRuntimeException none = assertThrows(StatusRuntimeException.class,
                () -> anonymous.getModelInfo(GetModelInfoRequest.getDefaultInstance()));
        assertEquals(Status.Code.UNAUTHENTICATED, none.getStatus().getCode());

        StatusRuntimeException wrong = assertThrows(StatusRuntimeException.class,
                () -> withKey("sk-wrong").getModelInfo(GetModelInfoRequest.getDefaultInstance()));
        assertEquals(Status.Code.UNAUTHENTICATED, wrong.getStatus().getCode());
        assertFalse(wrong.getStatus().getDescription().contains("sk-wrong"));

        assertFalse(withKey(ApiKeysProfile.KEY).getModelInfo(GetModelInfoRequest.getDefaultInstance()).getModelId().isEmpty());
    }

    private ChatServiceGrpc.ChatServiceBlockingStub withKey(String key) {
        Metadata headers = new Metadata();
        headers.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + key);
        return ChatServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS)
                .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers));
    }
}
