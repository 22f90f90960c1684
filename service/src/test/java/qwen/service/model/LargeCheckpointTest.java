package qwen.service.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real-sized (1.8B, BF16, 3.7 GB, two files) random checkpoint: written in under a minute and
 * loaded without copying it onto the heap. Needs 3.7 GB of free disk, so it is excluded by default;
 * run it with
 * {@code ./mvnw -o -pl service test -Dtest=LargeCheckpointTest -Dqwen.test.large=true}.
 */
@EnabledIfSystemProperty(named = "qwen.test.large", matches = "true",
        disabledReason = "writes 3.7 GB; run with ./mvnw -o -pl service test -Dtest=LargeCheckpointTest -Dqwen.test.large=true")
class LargeCheckpointTest {

    @TempDir
    Path dir;

    @Test
    void writesAndMapsTheQwen18BShapes() throws Exception {
        RandomCheckpoint rc = RandomCheckpoint.qwen18B();
        long start = System.nanoTime();
        rc.writeTo(dir);
        double writeSeconds = (System.nanoTime() - start) / 1e9;
        System.out.printf("wrote a 1.8B-shaped BF16 checkpoint in %.1f s%n", writeSeconds);
        assertTrue(writeSeconds < 60, "writing took " + writeSeconds + " s");

        MemoryMXBean memory = ManagementFactory.getMemoryMXBean();
        System.gc();
        long heapBefore = memory.getHeapMemoryUsage().getUsed();
        try (ShardWeights w = CheckpointLoader.load(dir, LayerRange.whole(24))) {
            long heapGrowth = memory.getHeapMemoryUsage().getUsed() - heapBefore;
            System.out.printf("loaded; heap grew by %d MB%n", heapGrowth >> 20);
            assertTrue(heapGrowth < 64L << 20, "loading grew the heap by " + (heapGrowth >> 20) + " MB");
            assertEquals(24, w.layers().size());
            assertEquals(151936, w.lmHead().rows());
            // Every matrix byte except wte's (a token reads one row of it): 3,673,657,344 in all.
            assertEquals(3_673_657_344L - 151936L * 2048 * 2 - 2 * (24 * 2 * 2048 + 24 * 6144 + 2048),
                    w.bytesPerToken());
        }
    }
}
