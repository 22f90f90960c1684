package qwen.service.kv;

/** A step needed more KV pages than the shard's budget allows. No pages were leaked. */
public final class KvBudgetExceededException extends RuntimeException {
    public KvBudgetExceededException(String message) {
        super(message);
    }
}
