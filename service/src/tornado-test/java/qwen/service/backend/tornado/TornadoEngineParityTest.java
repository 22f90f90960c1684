package qwen.service.backend.tornado;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import qwen.service.backend.DeviceOptions;
import qwen.service.engine.EngineOptions;
import qwen.service.engine.Generator;
import qwen.service.engine.ShardEngine;
import qwen.service.engine.StepInput;
import qwen.service.engine.StepOutput;
import qwen.service.model.DType;
import qwen.service.model.RandomCheckpoint;
import qwen.service.sampling.Sample;
import qwen.service.sampling.SamplingParams;
import qwen.service.sampling.TokenLogprob;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;

/**
 * Whole-model runs on the TornadoVM backend against the CPU backend. fp16 weights round each
 * weight by up to 2^-11 relative, so greedy ids may part where two logits are within that noise;
 * the contract is: at every step until the first divergence, the device's top-5 logprobs equal
 * the CPU's within {@link #LOGPROB_TOLERANCE}, and the runs agree on most steps.
 */
class TornadoEngineParityTest {

    /** Natural-log probability difference allowed between fp16-weight device and f32 CPU logits. */
    static final double LOGPROB_TOLERANCE = 0.02;

    @TempDir
    Path tmp;

    @Test
    void greedyDecodeMatchesTheCpuBackendStepByStep() {
        RandomCheckpoint shape = new RandomCheckpoint(64, 3, 4, 96, 512, 256, DType.BF16, 1, 41, null);
        Path dir = shape.writeTo(tmp.resolve("m"));
        int[] prompt = new SplittableRandom(7).ints(9, 0, 512).toArray();
        Generator.Result cpu = generate(dir, EngineOptions.KernelSet.VECTOR, prompt, 12);
        Generator.Result gpu = generate(dir, EngineOptions.KernelSet.TORNADO, prompt, 12);
        assertCloseUntilDivergence(cpu, gpu);
    }

    @Test
    void headDimTwelveAndWidthsThatAreNotPowersOfTwo() {
        RandomCheckpoint shape = new RandomCheckpoint(48, 2, 4, 52, 257, 256, DType.F16, 1, 42, null);
        Path dir = shape.writeTo(tmp.resolve("odd"));
        int[] prompt = new SplittableRandom(8).ints(5, 0, 257).toArray();
        assertCloseUntilDivergence(generate(dir, EngineOptions.KernelSet.VECTOR, prompt, 8),
                generate(dir, EngineOptions.KernelSet.TORNADO, prompt, 8));
    }

    @Test
    void longPromptPastSeqLengthUsesNtkAndLognAndCrossesKvPages() {
        // seq_length 96 and a 100-token prompt: dynamic NTK and logn are active, and the cache spans 2 pages.
        RandomCheckpoint shape = new RandomCheckpoint(64, 2, 4, 96, 512, 96, DType.BF16, 1, 43, null);
        Path dir = shape.writeTo(tmp.resolve("ntk"));
        int[] prompt = new SplittableRandom(9).ints(100, 0, 512).toArray();
        assertCloseUntilDivergence(generate(dir, EngineOptions.KernelSet.VECTOR, prompt, 6),
                generate(dir, EngineOptions.KernelSet.TORNADO, prompt, 6));
    }

    @Test
    void aBatchOfSequencesEqualsEachRunAlone() {
        RandomCheckpoint shape = new RandomCheckpoint(64, 2, 4, 96, 512, 256, DType.BF16, 1, 44, null);
        Path dir = shape.writeTo(tmp.resolve("batch"));
        SamplingParams greedy = SamplingParams.greedy(5);
        int[][] prompts = {
            new SplittableRandom(1).ints(3, 0, 512).toArray(),
            new SplittableRandom(2).ints(11, 0, 512).toArray(),
            new SplittableRandom(3).ints(6, 0, 512).toArray()};
        try (ShardEngine engine = open(dir, null, EngineOptions.KernelSet.TORNADO)) {
            List<StepInput> batch = new ArrayList<>();
            for (int s = 0; s < prompts.length; s++) {
                batch.add(new StepInput("s" + s, 0, prompts[s], null, 0, true, greedy));
            }
            List<StepOutput> together = engine.step(batch);
            for (int s = 0; s < prompts.length; s++) {
                StepOutput alone = engine.step(List.of(new StepInput("alone" + s, 0, prompts[s], null, 0, true, greedy)))
                        .getFirst();
                assertEquals(alone.sample().id(), together.get(s).sample().id(), "sequence " + s);
                assertEquals(alone.sample().logprob(), together.get(s).sample().logprob(), 1e-4, "sequence " + s);
            }
        }
    }

    @Test
    void twoShardsTornadoThenCpuEqualOneCpuShard() {
        RandomCheckpoint shape = new RandomCheckpoint(64, 4, 4, 96, 512, 256, DType.BF16, 1, 45, null);
        Path dir = shape.writeTo(tmp.resolve("split"));
        int[] prompt = new SplittableRandom(4).ints(7, 0, 512).toArray();
        Generator.Result whole = generate(dir, EngineOptions.KernelSet.VECTOR, prompt, 8);
        SamplingParams greedy = SamplingParams.greedy(5);
        List<Sample> samples = new ArrayList<>();
        try (ShardEngine first = open(dir, "0-1", EngineOptions.KernelSet.TORNADO);
             ShardEngine second = open(dir, "2-3", EngineOptions.KernelSet.VECTOR)) {
            int[] next = prompt;
            int pos = 0;
            for (int step = 0; step < 8; step++) {
                StepOutput h = first.step(List.of(new StepInput("s", pos, next, null, 0, true, greedy))).getFirst();
                assertNull(h.sample(), "the first shard returns hidden rows");
                StepOutput out = second.step(List.of(new StepInput("s", pos, next, h.hidden(), 0, true, greedy))).getFirst();
                pos += next.length;
                samples.add(out.sample());
                next = new int[] {whole.ids()[step]};   // follow the reference so every step is comparable
            }
        }
        assertCloseUntilDivergence(whole, new Generator.Result(
                samples.stream().mapToInt(Sample::id).toArray(), samples, 0, 0));
    }

    /**
     * On a PTX device, the tensor-core tasks in a whole model: the prompt (40 rows, two blocks of
     * tokens) through them for every matrix, the tiled way from 2 rows and the tensor cores from one
     * block (at the defaults a model this small never reaches them), against the CPU backend.
     */
    @Test
    void tensorCoresGiveTheCpuBackendsResult() {
        Assumptions.assumeTrue(TornadoBackend.hasTensorCores(TornadoExecutionPlan.DEFAULT_DEVICE),
                "the tensor-core kernels need a PTX device (TornadoVM's MMA intrinsics are PTX only); on an NVIDIA GPU"
                        + " bench/gpu/run.sh runs this test");
        RandomCheckpoint shape = new RandomCheckpoint(64, 2, 4, 96, 512, 256, DType.BF16, 1, 47, null);
        Path dir = shape.writeTo(tmp.resolve("tc"));
        int[] prompt = new SplittableRandom(10).ints(40, 0, 512).toArray();
        Generator.Result cpu = generate(dir, EngineOptions.KernelSet.VECTOR, prompt, 6);
        try (ShardEngine engine = open(dir, null, EngineOptions.KernelSet.TORNADO)) {
            TornadoBackend backend = (TornadoBackend) engine.backend();
            assertTrue(backend.hasTensorCoreKernels(), backend.device());
            backend.tiledFrom(2);
            backend.tensorCoreBlocks(1);
            assertCloseUntilDivergence(cpu, Generator.generate(engine, prompt, 6, SamplingParams.greedy(5), Set.of(), id -> { }));
        }
    }

    @Test
    void releasedSequencesReturnTheirDevicePages() {
        RandomCheckpoint shape = new RandomCheckpoint(64, 2, 4, 96, 512, 256, DType.BF16, 1, 46, null);
        Path dir = shape.writeTo(tmp.resolve("pages"));
        try (ShardEngine engine = open(dir, null, EngineOptions.KernelSet.TORNADO)) {
            long free = engine.kvPool().freePages();
            for (int i = 0; i < 3; i++) {
                engine.step(List.of(new StepInput("r" + i, 0, new int[] {1, 2, 3}, null, 0, true, SamplingParams.greedy(1))));
            }
            assertTrue(engine.kvPool().freePages() < free);
            engine.release(List.of("r0", "r1", "r2"));
            assertEquals(free, engine.kvPool().freePages());
        }
    }

    static void assertCloseUntilDivergence(Generator.Result cpu, Generator.Result gpu) {
        int agree = 0;
        for (int step = 0; step < Math.min(cpu.ids().length, gpu.ids().length); step++) {
            Sample c = cpu.samples().get(step);
            Sample g = gpu.samples().get(step);
            for (TokenLogprob t : c.top()) {
                TokenLogprob other = g.top().stream().filter(x -> x.id() == t.id()).findFirst().orElse(null);
                if (other != null) {
                    assertEquals(t.logprob(), other.logprob(), LOGPROB_TOLERANCE, "logprob of " + t.id() + " at step " + step);
                } else {
                    // Absent from the device's top 5: only possible for a near-tie at the cut.
                    double fifth = g.top().getLast().logprob();
                    assertTrue(t.logprob() <= fifth + LOGPROB_TOLERANCE, "token " + t.id() + " at step " + step
                            + ": cpu top " + c.top() + ", device top " + g.top());
                }
            }
            if (c.id() != g.id()) {
                break;
            }
            agree++;
        }
        assertTrue(agree >= Math.min(cpu.ids().length, 4), "greedy runs agree on only " + agree + " steps");
    }

    static Generator.Result generate(Path dir, EngineOptions.KernelSet kernels, int[] prompt, int n) {
        try (ShardEngine engine = open(dir, null, kernels)) {
            return Generator.generate(engine, prompt, n, SamplingParams.greedy(5), Set.of(), id -> { });
        }
    }

    static ShardEngine open(Path dir, String layers, EngineOptions.KernelSet kernels) {
        return ShardEngine.open(new EngineOptions(dir, layers, kernels, 2, 16L << 20), new DeviceOptions(null, 128));
    }
}
