package qwen.gateway.routing;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.IntPredicate;

/**
 * Consistent hashing of sequence ids over pipeline replicas: each replica owns many points on a
 * ring of 64-bit hashes, and a key goes to the first replica clockwise from its hash that is up.
 * When a replica goes down only its keys move (each to the next replica on the ring), and they
 * come back when it returns; the other replicas' keys never move.
 */
public final class HashRing {

    /** Points per replica: enough that replicas share keys evenly (within a few percent). */
    static final int POINTS = 128;

    private final TreeMap<Long, Integer> ring = new TreeMap<>();
    private final int replicas;

    public HashRing(int replicas) {
        if (replicas < 1) {
            throw new IllegalArgumentException("replicas must be >= 1, got " + replicas);
        }
        this.replicas = replicas;
        for (int r = 0; r < replicas; r++) {
            for (int p = 0; p < POINTS; p++) {
                ring.put(hash("replica-" + r + "#" + p), r);
            }
        }
    }

    public int replicas() {
        return replicas;
    }

    /** The replica for {@code key} among those {@code up} accepts, or -1 when none is up. */
    public int route(String key, IntPredicate up) {
        long h = hash(key);
        for (Map.Entry<Long, Integer> e : ring.tailMap(h, true).entrySet()) {
            if (up.test(e.getValue())) {
                return e.getValue();
            }
        }
        for (Map.Entry<Long, Integer> e : ring.headMap(h, false).entrySet()) {
            if (up.test(e.getValue())) {
                return e.getValue();
            }
        }
        return -1;
    }

    static long hash(String key) {
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256").digest(key.getBytes(StandardCharsets.UTF_8));
            return ByteBuffer.wrap(digest).getLong();
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JVM", e);
        }
    }
}
