package qwen.service.model.gguf;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import qwen.service.backend.cpu.CpuBackend;
import qwen.service.backend.cpu.VectorKernels;
import qwen.service.engine.Generator;
import qwen.service.engine.ShardEngine;
import qwen.service.kv.KvPool;
import qwen.service.model.Checkpoints;
import qwen.service.model.DType;
import qwen.service.model.LayerRange;
import qwen.service.model.LayerWeights;
import qwen.service.model.Matrix;
import qwen.service.model.QuantBlocks;
import qwen.service.model.QwenConfig;
import qwen.service.model.RowGroups;
import qwen.service.model.ShardWeights;
import qwen.service.sampling.SamplingParams;

/**
 * GGUF files of every supported weight type, written by {@link RandomGguf}, load through
 * {@link Checkpoints} and compute what their dequantized f32 twins compute: the same greedy
 * continuation of a 40-token prompt and logprobs within 1e-4 when the quantized weights run on the
 * scalar reference kernels (which decode each element exactly) and the twin on the vector
 * kernels; and the vector kernels on the quantized weights (prefill through the packed path,
 * then block decode with 8-bit activations) follow the reference within
 * {@link qwen.service.model.F32Twin#QUANTIZED_ACTIVATION_TOLERANCE}, Q4_0 also re-laid in row groups
 * as the engine serves it ({@link RowGroups}).
 */
class GgufModelTest {

    private static final ValueLayout.OfFloat LE_FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @TempDir
    Path tmp;

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"F32", "F16", "BF16", "Q8_0", "Q4_0"})
    void loadsAndMatchesItsDequantizedTwin(GgmlType type) throws Exception {
        Path file = tmp.resolve("m-" + type + ".gguf");
        RandomGguf shape = RandomGguf.tiny(type, 3);
        shape.write(file);
        QwenConfig cfg = Checkpoints.config(file);
        assertEquals(new QwenConfig(64, 2, 4, 16, 96, 320, 256, 10000, 1e-6f, true, true), cfg);
        int[] prompt = new SplittableRandom(9).ints(40, 0, 320).toArray();
        try (ShardWeights w = Checkpoints.load(file, LayerRange.whole(cfg.numLayers()));
             Arena arena = Arena.ofShared()) {
            assertEquals(type.dtype(), w.layers().getFirst().w1().dtype());
            assertEquals(type.dtype(), w.lmHead().dtype());
            ShardWeights twin = f32Twin(w, arena);
            Generator.Result quant = exact(w, prompt);
            Generator.Result f32 = generate(twin, prompt);
            assertArrayEquals(f32.ids(), quant.ids(), "greedy continuation on " + type + " vs its f32 twin");
            for (int s = 0; s < quant.samples().size(); s++) {
                assertEquals(f32.samples().get(s).logprob(), quant.samples().get(s).logprob(), 1e-4, "step " + s);
            }
            assertTrue(distinct(quant.ids()) > 1, "a degenerate continuation would prove little");
            Generator.Result fast = generate(w, prompt);
            if (type.dtype().quantized()) {
                qwen.service.model.F32Twin.assertFollows(quant, fast);
                // As ShardEngine.open serves it on the vector kernels: Q4_0 and Q8_0 re-laid in row groups.
                ShardWeights relaid = RowGroups.apply(new ShardWeights(w.config(), w.range(), w.wte(), w.layers(), w.lnF(),
                        w.lmHead(), () -> { }));
                DType served = switch (type) {
                    case Q4_0 -> DType.Q4_0_R16;
                    case Q8_0 -> DType.Q8_0_R16;
                    default -> type.dtype();
                };
                assertEquals(served, relaid.layers().getFirst().w1().dtype());
                assertEquals(served, relaid.lmHead().dtype());
                qwen.service.model.F32Twin.assertFollows(quant, generate(relaid, prompt));
                relaid.close();
            } else {
                assertArrayEquals(quant.ids(), fast.ids(), "vector kernels on " + type);
            }
        }
    }

    /** Quantize-on-load of a BF16 safetensors checkpoint runs the same as its dequantized twin. */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q8_0", "Q4_0"})
    void quantizeOnLoadOfABf16Checkpoint(DType type) throws Exception {
        qwen.service.model.RandomCheckpoint shape = new qwen.service.model.RandomCheckpoint(64, 2, 4, 96, 320, 256,
                DType.BF16, 1, 8, null);
        Path dir = shape.writeTo(tmp.resolve("bf16"));
        int[] prompt = new SplittableRandom(4).ints(40, 0, 320).toArray();
        try (ShardWeights source = qwen.service.model.CheckpointLoader.load(dir, LayerRange.whole(2));
             Arena arena = Arena.ofShared()) {
            ShardWeights q = qwen.service.model.Quantizer.quantize(
                    new ShardWeights(source.config(), source.range(), source.wte(), source.layers(), source.lnF(),
                            source.lmHead(), () -> { }), type);
            assertEquals(type, q.layers().getFirst().cAttn().dtype());
            assertEquals(type, q.wte().dtype());
            Matrix before = source.layers().get(1).w2();
            Matrix after = q.layers().get(1).w2();
            for (int r = 0; r < before.rows(); r += 7) {
                for (int c = 0; c < before.cols(); c++) {
                    float w = QuantBlocks.element(before, r, c);
                    assertEquals(w, QuantBlocks.element(after, r, c), type == DType.Q8_0 ? 0.02f : 0.2f, "w2[" + r + "," + c + "]");
                }
            }
            Generator.Result quant = exact(q, prompt);
            Generator.Result f32 = generate(f32Twin(q, arena), prompt);
            assertArrayEquals(f32.ids(), quant.ids());
            qwen.service.model.F32Twin.assertFollows(quant, generate(q, prompt));
            q.close();
        }
    }

    private static int distinct(int[] ids) {
        return (int) java.util.Arrays.stream(ids).distinct().count();
    }

    private static Generator.Result generate(ShardWeights w, int[] prompt) {
        return qwen.service.model.F32Twin.generate(w, prompt, 10);
    }

    /** The scalar reference kernels, which compute on the dequantized elements exactly. */
    private static Generator.Result exact(ShardWeights w, int[] prompt) {
        return qwen.service.model.F32Twin.generate(w, prompt, 10, new qwen.service.backend.cpu.ScalarKernels());
    }

    private static ShardWeights f32Twin(ShardWeights w, Arena arena) {
        return qwen.service.model.F32Twin.of(w, arena);
    }
}
