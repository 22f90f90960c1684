package qwen.service.grpc;

/** Where the shard process is in its life; only SERVING answers Info, Step and Release. */
public enum ServingPhase {
    /** The weights are being made or loaded; health says NOT_SERVING, RPCs say UNAVAILABLE. */
    LOADING,
    /** The engine is open and steps run. */
    SERVING,
    /** Shutdown has begun; health says NOT_SERVING again and new work is refused. */
    STOPPING
}
