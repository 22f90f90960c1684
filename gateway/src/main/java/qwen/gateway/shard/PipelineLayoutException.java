package qwen.gateway.shard;

/** The configured shards do not form one pipeline of one model; the message says why. */
public final class PipelineLayoutException extends IllegalStateException {

    public PipelineLayoutException(String message) {
        super(message);
    }
}
