package qwen.service.grpc;

import grpc.health.v1.HealthOuterClass.HealthCheckRequest;
import grpc.health.v1.HealthOuterClass.HealthCheckResponse;
import grpc.health.v1.HealthOuterClass.HealthCheckResponse.ServingStatus;
import grpc.health.v1.MutinyHealthGrpc;
import io.grpc.Status;
import io.quarkus.grpc.GrpcService;
import io.smallrye.mutiny.Multi;
import io.smallrye.mutiny.Uni;
import jakarta.inject.Inject;
import java.util.Set;
import java.util.function.Consumer;
import qwen.proto.shard.v1.ShardServiceGrpc;

/**
 * The standard grpc.health.v1.Health service, as shard.proto specifies it: "" (the process) and
 * "qwen.shard.v1.ShardService" report NOT_SERVING while the weights load or the process shuts
 * down, and SERVING once Step can run.
 *
 * <p>Quarkus' built-in health service (quarkus.grpc.server.grpc-health.enabled, off in
 * application.properties) cannot say this: it reports SERVING as soon as the gRPC server listens,
 * which is before StartupEvent, so before the weights are loaded.
 */
@GrpcService
public class ShardHealthService extends MutinyHealthGrpc.HealthImplBase {

    private static final Set<String> SERVICES = Set.of("", ShardServiceGrpc.SERVICE_NAME);

    /** health.proto's SERVICE_UNKNOWN, which the older copy of the proto in Quarkus' stubs lacks. */
    private static final int SERVICE_UNKNOWN = 3;

    private final ShardRuntime runtime;

    @Inject
    public ShardHealthService(ShardRuntime runtime) {
        this.runtime = runtime;
    }

    @Override
    public Uni<HealthCheckResponse> check(HealthCheckRequest request) {
        if (!SERVICES.contains(request.getService())) {
            return Uni.createFrom().failure(Status.NOT_FOUND
                    .withDescription("unknown service '" + request.getService() + "'; this shard reports on '' and "
                            + ShardServiceGrpc.SERVICE_NAME)
                    .asRuntimeException());
        }
        return Uni.createFrom().item(() -> response(runtime.phase()));
    }

    /** The current status at once, then every change, until the call ends. */
    @Override
    public Multi<HealthCheckResponse> watch(HealthCheckRequest request) {
        if (!SERVICES.contains(request.getService())) {
            return Multi.createFrom().item(HealthCheckResponse.newBuilder().setStatusValue(SERVICE_UNKNOWN).build());
        }
        Multi<HealthCheckResponse> changes = Multi.createFrom().emitter(emitter -> {
            Consumer<ServingPhase> listener = phase -> emitter.emit(response(phase));
            runtime.addPhaseListener(listener);
            emitter.onTermination(() -> runtime.removePhaseListener(listener));
            emitter.emit(response(runtime.phase()));
        });
        return changes.skip().repetitions();
    }

    private static HealthCheckResponse response(ServingPhase phase) {
        return HealthCheckResponse.newBuilder()
                .setStatus(phase == ServingPhase.SERVING ? ServingStatus.SERVING : ServingStatus.NOT_SERVING)
                .build();
    }
}
