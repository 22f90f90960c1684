package qwen.service.model.gguf;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.api.condition.EnabledOnOs;
import org.junit.jupiter.api.condition.OS;
import org.junit.jupiter.api.io.TempDir;
import qwen.service.model.ServedModelMemory;

/**
 * An Int4 (Q4_0) model at Qwen-1.8B shapes, every matrix Q4_0 (1.03 GB of blocks, embedding and
 * lm_head included), served by a process with the shard's JVM options ({@link ServedModelMemory}):
 * after a 40-token prompt and 8 decode steps its resident set, heap, KV cache and every mapped
 * weight page it touched included, stays under 1.4 GB. It writes a 1 GB file and runs the full
 * model on the CPU (about a minute on two cores), so it is excluded by default; run it with
 * {@code ./mvnw -pl service -am verify -Dtest=Int4ResidentMemoryTest -Dsurefire.failIfNoSpecifiedTests=false -Dqwen.test.large=true}.
 */
@EnabledOnOs(value = OS.LINUX, disabledReason = "reads VmRSS from /proc/self/status")
@EnabledIfSystemProperty(named = "qwen.test.large", matches = "true",
        disabledReason = "writes a 1 GB file and runs a 1.8B-shaped model; run with ./mvnw -pl service -am verify"
                + " -Dtest=Int4ResidentMemoryTest -Dsurefire.failIfNoSpecifiedTests=false -Dqwen.test.large=true")
class Int4ResidentMemoryTest {


    @TempDir
    Path dir;

    @Test
    void residentSetOfAnInt4Qwen18bStaysUnder1_4GB() throws Exception {
        Path file = dir.resolve("qwen-1_8b-q4_0.gguf");
        RandomGguf.qwen18b(GgmlType.Q4_0, 1).write(file);
        long fileBytes = Files.size(file);
        assertTrue(fileBytes > 1_000_000_000L, "the file holds the whole model: " + fileBytes);
        ServedModelMemory.Figures f = ServedModelMemory.measure(file);
        System.out.printf("Q4_0 1.8B: file %d MiB; served by a child JVM: VmRSS %d MiB after loading, %d MiB after"
                + " generating, peak %d MiB (%s)%n", fileBytes >> 20, f.loaded() >> 20, f.served() >> 20, f.peak() >> 20, f.detail());
        assertTrue(f.peak() < ServedModelMemory.LIMIT, "peak resident set " + (f.peak() >> 20) + " MiB, limit "
                + (ServedModelMemory.LIMIT >> 20) + " MiB");
    }
}
