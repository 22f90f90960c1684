package qwen.gateway.shard;

import io.grpc.Status;

/**
 * A shard call failed as a whole: the shard is unreachable, ended the Step stream, or answered
 * something the contract does not allow.
 */
public final class ShardException extends RuntimeException {

    private final String address;
    private final Status.Code code;

    /**
     * @param address the shard, {@code host:port}
     * @param code the gRPC status of the failure; UNAVAILABLE, DEADLINE_EXCEEDED and CANCELLED mean
     *     the shard is down or restarting
     */
    public ShardException(String address, Status.Code code, String message, Throwable cause) {
        super("shard " + address + ": " + code + ": " + message, cause);
        this.address = address;
        this.code = code;
    }

    public String address() {
        return address;
    }

    public Status.Code code() {
        return code;
    }

    /** True when the shard is down, restarting or too slow rather than refusing the request. */
    public boolean unavailable() {
        return code == Status.Code.UNAVAILABLE || code == Status.Code.DEADLINE_EXCEEDED
                || code == Status.Code.CANCELLED || code == Status.Code.ABORTED;
    }

    /** Wraps any failure of a call to {@code address}. */
    static ShardException of(String address, Throwable failure) {
        if (failure instanceof ShardException shard) {
            return shard;
        }
        Status status = Status.fromThrowable(failure);
        String description = status.getDescription() != null ? status.getDescription() : String.valueOf(failure);
        return new ShardException(address, status.getCode(), description, failure);
    }
}
