package qwen.service.model.gguf;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import qwen.service.backend.cpu.ScalarKernels;
import qwen.service.engine.Generator;
import qwen.service.model.CheckpointException;
import qwen.service.model.Checkpoints;
import qwen.service.model.DType;
import qwen.service.model.F32Twin;
import qwen.service.model.LayerRange;
import qwen.service.model.QwenConfig;
import qwen.service.model.ShardWeights;

/**
 * GGUF files with the K-quants, Q5_0, Q4_1 and Q5_1, written by {@link RandomGguf}, load and
 * compute what their dequantized f32 twins compute (the same greedy continuation of a 40-token
 * prompt and logprobs within 1e-4 on the scalar reference kernels; the vector kernels, prefill
 * through the dequantized tiles and decode with 8-bit activations, follow within
 * {@link F32Twin#QUANTIZED_ACTIVATION_TOLERANCE}). The K-quant files have ffn rows of 288, not a
 * multiple of 256, so their ffn_down falls back as llama.cpp's quantize does (Q5_K's to Q5_1, as
 * in a Q5_K_M file); Q4_K is the Q4_K_M-like mix (Q4_K matrices, Q5_K attn_qkv, Q6_K head, Q5_0
 * ffn_down).
 */
class KQuantGgufTest {

    @TempDir
    Path tmp;

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q5_0", "Q4_1", "Q5_1", "Q4_K", "Q5_K", "Q6_K"})
    void loadsAndMatchesItsDequantizedTwin(GgmlType type) throws Exception {
        Path file = tmp.resolve("m-" + type + ".gguf");
        int hidden = type.dtype().kQuant() ? 256 : 64;
        new RandomGguf(hidden, 2, 4, 288, 320, 256, type, 5).write(file);
        QwenConfig cfg = Checkpoints.config(file);
        int[] prompt = new SplittableRandom(9).ints(40, 0, 320).toArray();
        try (ShardWeights w = Checkpoints.load(file, LayerRange.whole(cfg.numLayers()));
             Arena arena = Arena.ofShared()) {
            DType fallback = RandomGguf.fallback(type).dtype();
            assertEquals(type.dtype(), w.layers().getFirst().w1().dtype());
            assertEquals(type == GgmlType.Q4_K ? DType.Q5_K : type.dtype(), w.layers().getFirst().cAttn().dtype());
            assertEquals(type.dtype(), w.layers().getFirst().attnCProj().dtype());
            assertEquals(type.dtype(), w.wte().dtype());
            assertEquals(fallback, w.layers().getFirst().mlpCProj().dtype(), "ffn_down, rows of 288");
            if (type == GgmlType.Q5_K) {
                assertEquals(DType.Q5_1, fallback, "llama.cpp's fallback under Q5_K");
            }
            assertEquals(type == GgmlType.Q4_K ? DType.Q6_K : type.dtype(), w.lmHead().dtype());
            Generator.Result exact = F32Twin.generate(w, prompt, 10, new ScalarKernels());
            Generator.Result f32 = F32Twin.generate(F32Twin.of(w, arena), prompt, 10);
            assertArrayEquals(f32.ids(), exact.ids(), "greedy continuation on " + type + " vs its f32 twin");
            for (int s = 0; s < exact.samples().size(); s++) {
                assertEquals(f32.samples().get(s).logprob(), exact.samples().get(s).logprob(), 1e-4, "step " + s);
            }
            assertTrue(java.util.Arrays.stream(exact.ids()).distinct().count() > 1, "a degenerate continuation");
            F32Twin.assertFollows(exact, F32Twin.generate(w, prompt, 10));
        }
    }

    /**
     * A tensor whose rows are not whole blocks (a K-quant's 256, Q5_1's 32) is refused with its
     * name, its type and the block size.
     */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.CsvSource({"Q4_K, 288", "Q5_1, 48"})
    void rowsNotWholeBlocksAreRefusedByName(GgmlType type, long cols) throws Exception {
        Path file = tmp.resolve("bad.gguf");
        RandomGguf shape = new RandomGguf(64, 1, 4, 96, 320, 256, GgmlType.F32, 1);
        GgufWriter.write(file, shape.metadata(), List.of(
                new GgufWriter.Tensor("token_embd.weight", new long[] {cols, 4}, type, seg -> { })));
        CheckpointException e = assertThrows(CheckpointException.class, () -> Checkpoints.config(file));
        assertTrue(e.getMessage().contains("'token_embd.weight'") && e.getMessage().contains(type.name())
                && e.getMessage().contains("block size " + type.dtype().blockSize()), e.getMessage());
    }
}
