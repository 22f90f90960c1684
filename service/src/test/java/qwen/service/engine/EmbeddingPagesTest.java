package qwen.service.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledOnOs;
import org.junit.jupiter.api.condition.OS;
import org.junit.jupiter.api.io.TempDir;
import qwen.service.model.DType;
import qwen.service.model.Matrix;
import qwen.service.model.RandomCheckpoint;
import qwen.service.sampling.SamplingParams;

/**
 * The token embedding of a mapped checkpoint does not stay in the serving process's resident
 * set. Each step reads a few rows, and a read maps the row's whole page-cache folio (up to 2 MB
 * on this kernel): kept, the pages of a server's traffic would grow toward the whole table
 * (622 MB at 1.8B shapes). After a step, no page of the table is mapped in this process, page by
 * page from /proc/self/pagemap's present bit.
 */
@EnabledOnOs(value = OS.LINUX, disabledReason = "reads /proc/self/pagemap")
class EmbeddingPagesTest {

    private static final int PAGE = 4096;

    @TempDir
    Path dir;

    @Test
    void noPageOfTheEmbeddingStaysMappedAfterAStep() throws Exception {
        // vocab 65536 x 64 f32: a 16 MB table, thousands of pages.
        Path model = new RandomCheckpoint(64, 1, 4, 96, 65536, 256, DType.F32, 1, 3, null).writeTo(dir);
        try (ShardEngine e = ShardEngine.open(new EngineOptions(model, null, EngineOptions.KernelSet.VECTOR, 1, 16L << 20))) {
            Matrix wte = e.backend().weights().wte();
            assertTrue(wte.data().isMapped(), "the table is read from the mapped file");
            // The probe sees mapped pages: rows read outside a step stay mapped.
            long sum = 0;
            for (int row = 0; row < wte.rows(); row += 4096) {
                sum += wte.data().get(ValueLayout.JAVA_BYTE, row * wte.rowBytes());
            }
            assertTrue(presentPages(wte.data()) >= 16, "pages present after reading 16 rows: " + presentPages(wte.data())
                    + " (" + sum + ")");

            int[] prompt = new SplittableRandom(5).ints(30, 0, 65536).toArray();
            Generator.Result r = Generator.generate(e, prompt, 4, SamplingParams.greedy(0), Set.of(), id -> { });
            assertEquals(4, r.ids().length);
            assertEquals(0, presentPages(wte.data()), "pages of the embedding mapped after a step");
        }
    }

    /** Pages wholly inside s that are mapped in this process. */
    private static long presentPages(MemorySegment s) throws IOException {
        long first = (s.address() + PAGE - 1) / PAGE;
        long end = (s.address() + s.byteSize()) / PAGE;
        ByteBuffer entries = ByteBuffer.allocate((int) (end - first) * 8).order(ByteOrder.LITTLE_ENDIAN);
        try (FileChannel pagemap = FileChannel.open(Path.of("/proc/self/pagemap"))) {
            while (entries.hasRemaining() && pagemap.read(entries, first * 8 + entries.position()) > 0) {
                // one 64-bit entry per page
            }
        }
        long present = 0;
        for (int i = 0; i < entries.capacity(); i += 8) {
            present += entries.getLong(i) >>> 63;
        }
        return present;
    }
}
