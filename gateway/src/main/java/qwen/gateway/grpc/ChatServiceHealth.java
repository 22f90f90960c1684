package qwen.gateway.grpc;

import grpc.health.v1.HealthOuterClass.HealthCheckResponse.ServingStatus;
import io.quarkus.grpc.runtime.health.GrpcHealthStorage;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import io.vertx.core.Vertx;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.util.List;
import qwen.gateway.health.Drain;
import qwen.gateway.shard.PipelineService;

/**
 * Keeps grpc.health.v1 true to the contract (chat.proto): "" and "qwen.chat.v1.ChatService" are
 * SERVING only while the gateway can serve (the shard pipeline connected with every shard answering;
 * with several pipeline replicas, at least one such replica) and is not draining for shutdown.
 * Checked once a second on a timer; the check reads flags the probes set, so it may run on the event loop.
 */
@ApplicationScoped
class ChatServiceHealth {

    private static final List<String> SERVICES = List.of(GrpcHealthStorage.DEFAULT_SERVICE_NAME,
            "qwen.chat.v1.ChatService");
    private static final long PERIOD_MILLIS = 1000;

    private final GrpcHealthStorage health;
    private final PipelineService pipelines;
    private final Vertx vertx;
    private final Drain drain;
    private long timer = -1;

    ChatServiceHealth(GrpcHealthStorage health, PipelineService pipelines, Vertx vertx, Drain drain) {
        this.health = health;
        this.pipelines = pipelines;
        this.vertx = vertx;
        this.drain = drain;
    }

    void onStart(@Observes StartupEvent event) {
        update();
        timer = vertx.setPeriodic(PERIOD_MILLIS, id -> update());
    }

    void onStop(@Observes ShutdownEvent event) {
        if (timer >= 0) {
            vertx.cancelTimer(timer);
        }
    }

    private void update() {
        ServingStatus status = pipelines.serving() && !drain.draining() ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
        for (String service : SERVICES) {
            if (health.getStatuses().get(service) != status) {
                health.setStatus(service, status);
            }
        }
    }
}
