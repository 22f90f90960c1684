package qwen.gateway.shard;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import qwen.proto.shard.v1.ReleaseResponse;
import qwen.proto.shard.v1.ShardInfo;
import qwen.proto.shard.v1.StepRequest;
import qwen.proto.shard.v1.StepResponse;

/**
 * One shard as the pipeline drives it: the three calls of qwen.shard.v1.ShardService.
 * {@link ShardClient} speaks gRPC; tests substitute in-memory shards.
 */
public interface Shard extends AutoCloseable {

    /** Where the shard is, {@code host:port}, for messages. */
    String address();

    /**
     * Asks the shard what it holds (ShardService.Info).
     *
     * @throws ShardException when the shard does not answer or answers with an error
     */
    ShardInfo info();

    /**
     * Sends one step; the future completes with the shard's answer to it, or fails with a
     * {@link ShardException} when the call or the stream fails.
     */
    CompletableFuture<StepResponse> step(StepRequest request);

    /**
     * Gives up the steps in flight, for example after one timed out: they fail, and the next step
     * opens a new stream.
     */
    void resetStream(String reason);

    /**
     * Frees the KV of the named sequences (ShardService.Release).
     *
     * @throws ShardException when the shard does not answer or answers with an error
     */
    ReleaseResponse release(List<String> sequenceIds);

    /**
     * Frees the KV of every sequence whose id starts with {@code prefix} (ReleaseRequest.sequence_id_prefix).
     *
     * @throws ShardException when the shard does not answer
     */
    ReleaseResponse releasePrefix(String prefix);

    /** Closes the connection; a closed shard fails every call. */
    @Override
    void close();
}
