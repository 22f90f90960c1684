package qwen.service.model.gptq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.api.condition.EnabledOnOs;
import org.junit.jupiter.api.condition.OS;
import org.junit.jupiter.api.io.TempDir;
import qwen.service.engine.EngineOptions;
import qwen.service.engine.Generator;
import qwen.service.engine.ShardEngine;
import qwen.service.model.ProcStatus;
import qwen.service.sampling.Sample;
import qwen.service.sampling.SamplingParams;

/**
 * Qwen's own Int4 format, GPTQ, at Qwen-1_8B-Chat-Int4's shapes ({@link StreamedGptqCheckpoint}:
 * the 1.88 GB safetensors file, f16 wte and lm_head), served by the engine: after loading it
 * (every Linear repacked into 651 MB of Q4_0 blocks in memory) and generating (a 40-token prompt
 * through the packed prefill, then 8 decode steps), the GPTQ source tensors must be gone from the
 * resident set once repacked, and this JVM's whole resident set should stay under 1.4 GB.
 *
 * <p>The second does not hold today: measured 1654 to 1711 MB after generating (2219 MB before
 * the loader released the source pages). Its parts: 651 MB of repacked Q4_0 blocks and the f16
 * lm_head's 594 MB, read at every step, are the model itself (1245 MB); the rest is the test
 * JVM's (Java heap 230 to 270 MB resident under the default G1 sizing, about 110 MB of GC, code,
 * metaspace and malloc arenas, 26 MB of JDK files) and about 52 MB of wte pages, which the kernel
 * maps a large folio at a time for the few dozen embedding rows read. Under 1.4 GB needs the head
 * quantized (the GGUF Q4_0 model of {@code Int4ResidentMemoryTest} measures 1284 MB).
 *
 * <p>It writes a 1.9 GB file and runs the full model on the CPU (about 40 s on two cores), so it
 * is excluded by default; run it with
 * {@code ./mvnw -pl service -am verify -Dtest=GptqResidentMemoryTest -Dsurefire.failIfNoSpecifiedTests=false -Dqwen.test.large=true}.
 */
@EnabledOnOs(value = OS.LINUX, disabledReason = "reads VmRSS from /proc/self/status")
@EnabledIfSystemProperty(named = "qwen.test.large", matches = "true",
        disabledReason = "writes a 1.9 GB GPTQ checkpoint and runs a 1.8B-shaped model (its resident set, measured 1654 to 1711 MB"
                + " with the f16 lm_head, exceeds the 1.4 GB it asserts); run with ./mvnw -pl service -am verify"
                + " -Dtest=GptqResidentMemoryTest -Dsurefire.failIfNoSpecifiedTests=false -Dqwen.test.large=true")
class GptqResidentMemoryTest {

    private static final long LIMIT = 1400L << 20;
    private static final long SOURCE_LIMIT = 200L << 20;

    @TempDir
    Path dir;

    @Test
    void residentSetOfAGptqInt4Qwen18bStaysUnder1_4GB() throws Exception {
        long tensorBytes = StreamedGptqCheckpoint.write(dir, 1);
        long fileBytes = Files.size(dir.resolve("model.safetensors"));
        System.gc();
        long before = ProcStatus.rss();
        String peakWriting = ProcStatus.line("VmHWM");
        long loaded;
        long fileAfterLoad;
        long peak;
        try (ShardEngine e = ShardEngine.open(new EngineOptions(dir, null, EngineOptions.KernelSet.VECTOR, 2, 64L << 20))) {
            loaded = ProcStatus.rss();
            String afterLoad = ProcStatus.line("RssAnon") + ", " + ProcStatus.line("RssFile");
            fileAfterLoad = Long.parseLong(ProcStatus.line("RssFile").replaceAll("[^0-9]", "")) << 10;
            int[] prompt = new SplittableRandom(3).ints(40, 0, 151643).toArray();
            Generator.Result r = Generator.generate(e, prompt, 9, SamplingParams.greedy(0), Set.of(), id -> { });
            assertEquals(9, r.ids().length);
            for (Sample s : r.samples()) {
                assertTrue(Float.isFinite(s.logprob()), "logprob of token " + s.id() + ": " + s.logprob());
            }
            peak = ProcStatus.rss();
            System.out.printf("GPTQ Int4 1.8B: file %d MB; VmRSS %d MB before loading (%s after writing the file), %d MB"
                            + " after loading (%s), %d MB after generating (%s, %s; %s; Java heap committed %d MB)%n",
                    fileBytes >> 20, before >> 20, peakWriting, loaded >> 20, afterLoad, peak >> 20,
                    ProcStatus.line("RssAnon"), ProcStatus.line("RssFile"), ProcStatus.line("VmHWM"),
                    Runtime.getRuntime().totalMemory() >> 20);
        }
        assertEquals(StreamedGptqCheckpoint.QWEN_INT4_TENSOR_BYTES, tensorBytes, "the tensors of Qwen-1_8B-Chat-Int4");
        // Before the loader released them, the source tensors kept about 630 MB of file pages here.
        assertTrue(fileAfterLoad < SOURCE_LIMIT, "file pages resident after loading: " + (fileAfterLoad >> 20)
                + " MB; the GPTQ source tensors were not released after repacking");
        assertTrue(peak < LIMIT, "resident set " + (peak >> 20) + " MB, limit " + (LIMIT >> 20) + " MB");
    }
}
