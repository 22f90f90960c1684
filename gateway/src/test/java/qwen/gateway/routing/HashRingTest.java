package qwen.gateway.routing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.function.IntPredicate;
import org.junit.jupiter.api.Test;

/** Consistent hashing: even shares, only a gone replica's keys move, and they come back. */
class HashRingTest {

    private static final int KEYS = 20_000;
    private static final IntPredicate ALL = r -> true;

    @Test
    void replicasShareKeysEvenly() {
        HashRing ring = new HashRing(4);
        int[] counts = new int[4];
        for (int i = 0; i < KEYS; i++) {
            counts[ring.route("session-" + i, ALL)]++;
        }
        for (int c : counts) {
            assertTrue(Math.abs(c - KEYS / 4) < KEYS / 4 * 0.25, "share " + c + " of " + KEYS);
        }
    }

    @Test
    void onlyTheKeysOfAGoneReplicaMoveAndTheyReturn() {
        HashRing ring = new HashRing(3);
        IntPredicate withoutOne = r -> r != 1;
        int moved = 0;
        for (int i = 0; i < KEYS; i++) {
            String key = "session-" + i;
            int before = ring.route(key, ALL);
            int during = ring.route(key, withoutOne);
            if (before == 1) {
                assertNotEquals(1, during);
                moved++;
            } else {
                assertEquals(before, during, key + " moved though its replica stayed");
            }
            assertEquals(before, ring.route(key, ALL), "the same answer when the replica is back");
        }
        assertTrue(moved > KEYS / 5, "replica 1 owned " + moved + " keys");
        assertEquals(-1, ring.route("any", r -> false));
    }

    @Test
    void addressesNameEachReplica() {
        List<String> template = List.of("qwen-shard-0-{replica}.qwen-shard-0:9100", "qwen-shard-1-{replica}.qwen-shard-1:9100");
        assertEquals(List.of("qwen-shard-0-2.qwen-shard-0:9100", "qwen-shard-1-2.qwen-shard-1:9100"),
                ReplicaAddresses.of(template, 2));
        assertEquals(List.of("127.0.0.1:9100"), ReplicaAddresses.of(List.of(" 127.0.0.1:9100"), 0));
        ReplicaAddresses.check(template, 3);
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> ReplicaAddresses.check(List.of("127.0.0.1:9100"), 2));
        assertTrue(e.getMessage().contains("{replica}"), e.getMessage());
        assertThrows(IllegalStateException.class, () -> ReplicaAddresses.check(template, 0));
    }
}
