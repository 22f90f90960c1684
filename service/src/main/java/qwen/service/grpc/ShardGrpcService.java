package qwen.service.grpc;

import io.quarkus.grpc.GrpcService;
import io.smallrye.mutiny.Multi;
import io.smallrye.mutiny.Uni;
import jakarta.inject.Inject;
import java.util.List;
import qwen.proto.shard.v1.InfoRequest;
import qwen.proto.shard.v1.ReleaseRequest;
import qwen.proto.shard.v1.ReleaseResponse;
import qwen.proto.shard.v1.ShardInfo;
import qwen.proto.shard.v1.ShardService;
import qwen.proto.shard.v1.StepRequest;
import qwen.proto.shard.v1.StepResponse;
import qwen.service.engine.ShardEngine;
import qwen.service.metrics.ShardMetrics;

/**
 * qwen.shard.v1.ShardService over the {@link ShardRuntime}'s engine. Each method translates and
 * delegates; engine work runs on the runtime's model thread, never on the event loop. The status
 * codes are those documented in shard.proto.
 */
@GrpcService
public class ShardGrpcService implements ShardService {

    private final ShardRuntime runtime;
    private final ShardMetrics metrics;

    @Inject
    public ShardGrpcService(ShardRuntime runtime, ShardMetrics metrics) {
        this.runtime = runtime;
        this.metrics = metrics;
    }

    /** Answered on the calling thread from values that need no wait for a running step. */
    @Override
    public Uni<ShardInfo> info(InfoRequest request) {
        return Uni.createFrom().item(() -> InfoTranslator.info(runtime.engine(), runtime.settings(), runtime.sequencesHeld()));
    }

    @Override
    public Multi<StepResponse> step(Multi<StepRequest> requests) {
        return StepStream.responses(runtime, metrics, requests);
    }

    /** Queued behind the steps that arrived before it. */
    @Override
    public Uni<ReleaseResponse> release(ReleaseRequest request) {
        List<String> ids = List.copyOf(request.getSequenceIdsList());
        return runtime.call(() -> {
            ShardEngine engine = runtime.engine();
            int released = engine.release(ids);
            runtime.noteSequencesHeld();
            return ReleaseResponse.newBuilder()
                    .setReleased(released)
                    .setUnknown(ids.size() - released)
                    .setKvBytesInUse(engine.kvPool().bytesInUse())
                    .build();
        });
    }
}
