package qwen.service.backend.tornado;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import qwen.service.model.DType;
import qwen.service.model.RandomCheckpoint;

/**
 * The GPU benchmark end to end on a small model, on the suite's device (PoCL where there is no
 * GPU): every part of it runs, each of its parity checks finds the device within its bound of the
 * CPU backend, and the plain-launch part does not fail. Device time is scarce, so a broken
 * benchmark should show here first. (bench/gpu/run.sh leaves this class out on the GPU: the
 * benchmark itself runs there right after the tests.)
 */
class GpuBenchTest {

    @TempDir
    Path tmp;

    @Test
    void runsEveryPartOnASmallModelAndAgreesWithTheCpuBackend() throws Exception {
        Path dir = new RandomCheckpoint(64, 2, 4, 96, 512, 4096, DType.BF16, 1, 7, null).writeTo(tmp.resolve("small"));
        assertEquals(0, GpuBench.run(new String[] {dir.toString(), "64"}));
    }
}
