package qwen.gateway.scheduler;

/**
 * Gives up idle KV when the shards run out: the owner of kept sequences (sessions between turns)
 * picks one to drop.
 */
@FunctionalInterface
public interface KvEvictor {

    /** Forgets one idle sequence (the least recently used) and returns its id, or null when none is idle. */
    String evictOne();

    /** An evictor with nothing to give up. */
    KvEvictor NONE = () -> null;
}
