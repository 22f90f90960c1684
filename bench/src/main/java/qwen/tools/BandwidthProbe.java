package qwen.tools;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Streaming-read bandwidth of this machine: threads each sum a disjoint part of an off-heap
 * buffer much larger than the caches. The decode roofline is this figure over the bytes a token
 * reads.
 */
public final class BandwidthProbe {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    private BandwidthProbe() {
    }

    /** Median GB/s (1e9 bytes) over {@code repeats} full passes of a buffer of {@code bytes}. */
    public static double measure(long bytes, int threads, int repeats) throws Exception {
        try (Arena arena = Arena.ofShared(); ExecutorService pool = Executors.newFixedThreadPool(threads)) {
            MemorySegment buffer = arena.allocate(bytes, 64);
            buffer.fill((byte) 1);
            long part = bytes / threads / F.vectorByteSize() * F.vectorByteSize();
            double[] gbps = new double[repeats + 1];
            for (int r = 0; r <= repeats; r++) {                         // pass 0 warms up the JIT
                List<Callable<Float>> tasks = new ArrayList<>();
                for (int t = 0; t < threads; t++) {
                    MemorySegment slice = buffer.asSlice(t * part, part);
                    tasks.add(() -> sum(slice));
                }
                long start = System.nanoTime();
                float total = 0;
                for (Future<Float> f : pool.invokeAll(tasks)) {
                    total += f.get();
                }
                gbps[r] = part * threads / (double) (System.nanoTime() - start);
                if (total == 42) {
                    System.out.print("");                                // keeps the sums alive
                }
            }
            double[] timed = Arrays.copyOfRange(gbps, 1, gbps.length);
            Arrays.sort(timed);
            return timed[timed.length / 2];
        }
    }

    private static float sum(MemorySegment s) {
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = FloatVector.zero(F);
        FloatVector a2 = FloatVector.zero(F);
        FloatVector a3 = FloatVector.zero(F);
        long step = F.vectorByteSize();
        long n = s.byteSize() / (4 * step) * (4 * step);
        for (long o = 0; o < n; o += 4 * step) {
            a0 = a0.add(FloatVector.fromMemorySegment(F, s, o, ByteOrder.LITTLE_ENDIAN));
            a1 = a1.add(FloatVector.fromMemorySegment(F, s, o + step, ByteOrder.LITTLE_ENDIAN));
            a2 = a2.add(FloatVector.fromMemorySegment(F, s, o + 2 * step, ByteOrder.LITTLE_ENDIAN));
            a3 = a3.add(FloatVector.fromMemorySegment(F, s, o + 3 * step, ByteOrder.LITTLE_ENDIAN));
        }
        return a0.add(a1).add(a2).add(a3).reduceLanes(jdk.incubator.vector.VectorOperators.ADD);
    }
}
