package qwen.service.model.gptq;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import qwen.service.engine.Generator;
import qwen.service.model.CheckpointException;
import qwen.service.model.CheckpointLoader;
import qwen.service.model.Checkpoints;
import qwen.service.model.DType;
import qwen.service.model.F32Twin;
import qwen.service.model.LayerRange;
import qwen.service.model.LayerWeights;
import qwen.service.model.Matrix;
import qwen.service.model.QuantBlocks;
import qwen.service.model.RandomCheckpoint;
import qwen.service.model.ShardWeights;
import qwen.service.model.safetensors.SafeTensorsWriter;

/**
 * GPTQ checkpoints made here from random F16 weights with AutoGPTQ's documented packing (SPEC
 * 7.1: qweight packs 32/b input rows per little-endian word, qzeros packs 32/b output columns and
 * stores zero - 1, f16 scales, g_idx = i / group): each loaded weight equals
 * scale * (q - zero) exactly and its source within half a step, and greedy output (the scalar reference kernels on the loaded blocks) equals the same
 * model run from the dequantized f32 weights.
 */
class GptqCheckpointTest {

    @TempDir
    Path tmp;

    /** Groups of 128 (Qwen's) need widths that are multiples of 128: this model is 128 wide, its MLP 256. */
    @ParameterizedTest(name = "Int{0}, symmetric {1}, group {2}")
    @CsvSource({"4, true, 32, Q4_0", "8, true, 32, Q8_0", "4, false, 32, Q8_0", "4, true, 128, Q4_G128", "4, false, 128, Q8_0"})
    void loadsExactlyAndRunsAsItsDequantizedTwin(int bits, boolean symmetric, int group, DType expected) throws Exception {
        Path dir = tmp.resolve("int" + bits + symmetric + group);
        Map<String, int[][]> quants = writeGptq(dir, bits, symmetric, group, 5);
        int[] prompt = new SplittableRandom(2).ints(40, 0, 320).toArray();
        try (ShardWeights w = Checkpoints.load(dir, LayerRange.whole(2)); Arena arena = Arena.ofShared()) {
            LayerWeights l0 = w.layers().getFirst();
            assertEquals(expected, l0.w1().dtype());
            assertEquals(DType.F16, w.lmHead().dtype());
            // Every element of one matrix against the test's own q, zero and scale.
            Matrix m = l0.mlpCProj();
            int[][] q = quants.get("transformer.h.0.mlp.c_proj.q");
            int[][] z = quants.get("transformer.h.0.mlp.c_proj.z");
            int[][] s = quants.get("transformer.h.0.mlp.c_proj.s");
            for (int c = 0; c < m.rows(); c++) {
                for (int i = 0; i < m.cols(); i++) {
                    float want = Float.float16ToFloat((short) s[i / group][c]) * (q[i][c] - z[i / group][c]);
                    assertEquals(want, QuantBlocks.element(m, c, i), "c_proj[" + c + ", " + i + "]");
                }
            }
            // Exact arithmetic on the loaded blocks (the scalar reference) against the twin; then
            // the vector kernels, whose decode quantizes activations, against that.
            Generator.Result quant = F32Twin.generate(w, prompt, 10, new qwen.service.backend.cpu.ScalarKernels());
            Generator.Result twin = F32Twin.generate(F32Twin.of(w, arena), prompt, 10);
            assertArrayEquals(twin.ids(), quant.ids());
            for (int k = 0; k < quant.samples().size(); k++) {
                assertEquals(twin.samples().get(k).logprob(), quant.samples().get(k).logprob(), 1e-4);
            }
            F32Twin.assertFollows(quant, F32Twin.generate(w, prompt, 10));
        }
    }

    @Test
    void int8AsymmetricZerosAndOtherBitWidthsAreRefused() throws Exception {
        Path dir = tmp.resolve("asym8");
        writeGptq(dir, 8, false, 32, 6);
        CheckpointException e = assertThrows(CheckpointException.class, () -> Checkpoints.load(dir, LayerRange.whole(2)));
        assertTrue(e.getMessage().contains("transformer.h.0.attn.c_attn.qzeros") && e.getMessage().contains("symmetric"),
                e.getMessage());

        Path bad = tmp.resolve("bits3");
        writeGptq(bad, 4, true, 32, 7);
        Files.writeString(bad.resolve(GptqLoader.QUANTIZE_CONFIG), "{\"bits\": 3, \"group_size\": 32}");
        e = assertThrows(CheckpointException.class, () -> Checkpoints.load(bad, LayerRange.whole(2)));
        assertTrue(e.getMessage().contains("bits 3 is not supported"), e.getMessage());
    }

    /**
     * Writes a 2-layer GPTQ checkpoint quantized from a random F16 one, 64 wide with an MLP of 96
     * for groups of 32, else 128 and 256; returns, per quantized Linear, its unpacked q [in][out],
     * true zeros [group][out] and scale bits.
     */
    static Map<String, int[][]> writeGptq(Path dir, int bits, boolean symmetric, int group, long seed) throws Exception {
        boolean wide = group > 32;
        Path src = new RandomCheckpoint(wide ? 128 : 64, 2, 4, wide ? 256 : 96, 320, 256, DType.F16, 1, seed, null).writeTo(dir);
        Map<String, int[][]> quants = new LinkedHashMap<>();
        List<Tensor> tensors = new ArrayList<>();
        SplittableRandom rnd = new SplittableRandom(seed);
        try (ShardWeights w = CheckpointLoader.load(src, LayerRange.whole(2))) {
            tensors.add(f16(qwen.service.model.CheckpointLayout.WTE, w.wte()));
            tensors.add(f16(qwen.service.model.CheckpointLayout.LM_HEAD, w.lmHead()));
            tensors.add(vector(qwen.service.model.CheckpointLayout.LN_F, w.lnF()));
            for (LayerWeights l : w.layers()) {
                String p = "transformer.h." + l.index() + ".";
                tensors.add(vector(p + "ln_1.weight", l.ln1()));
                tensors.add(vector(p + "ln_2.weight", l.ln2()));
                tensors.add(vector(p + "attn.c_attn.bias", l.cAttnBias()));
                Matrix[] ms = {l.cAttn(), l.attnCProj(), l.w1(), l.w2(), l.mlpCProj()};
                String[] names = {"attn.c_attn", "attn.c_proj", "mlp.w1", "mlp.w2", "mlp.c_proj"};
                for (int k = 0; k < ms.length; k++) {
                    quantize(p + names[k], ms[k], bits, symmetric, group, rnd, tensors, quants);
                }
            }
        }
        writeSafetensors(dir.resolve("model.safetensors"), tensors);
        Files.writeString(dir.resolve(GptqLoader.QUANTIZE_CONFIG), "{\"bits\": " + bits + ", \"group_size\": " + group
                + ", \"damp_percent\": 0.01, \"desc_act\": false, \"static_groups\": false, \"sym\": " + symmetric
                + ", \"true_sequential\": true, \"model_name_or_path\": null, \"model_file_base_name\": \"model\"}");
        return quants;
    }

    /** AutoGPTQ-style quantization of one Linear (weights [out, in]) into its four tensors. */
    private static void quantize(String prefix, Matrix m, int bits, boolean symmetric, int group, SplittableRandom rnd,
                                 List<Tensor> out, Map<String, int[][]> quants) {
        int outs = m.rows();
        int ins = m.cols();
        int groups = ins / group;
        int max = (1 << bits) - 1;
        int per = 32 / bits;
        int[][] q = new int[ins][outs];
        int[][] z = new int[groups][outs];
        int[][] s = new int[groups][outs];
        for (int g = 0; g < groups; g++) {
            for (int c = 0; c < outs; c++) {
                float amax = 0;
                for (int i = g * group; i < (g + 1) * group; i++) {
                    amax = Math.max(amax, Math.abs(QuantBlocks.element(m, c, i)));
                }
                int zero = symmetric ? 1 << (bits - 1) : 1 + rnd.nextInt(max);
                short scaleBits = Float.floatToFloat16(2 * amax / max);
                float scale = Float.float16ToFloat(scaleBits);
                z[g][c] = zero;
                s[g][c] = scaleBits & 0xFFFF;
                for (int i = g * group; i < (g + 1) * group; i++) {
                    q[i][c] = Math.clamp(Math.round(QuantBlocks.element(m, c, i) / scale) + zero, 0, max);
                }
            }
        }
        int[] qweight = new int[ins / per * outs];
        for (int i = 0; i < ins; i++) {
            for (int c = 0; c < outs; c++) {
                qweight[(i / per) * outs + c] |= q[i][c] << (bits * (i % per));
            }
        }
        int[] qzeros = new int[groups * (outs / per)];
        for (int g = 0; g < groups; g++) {
            for (int c = 0; c < outs; c++) {
                qzeros[g * (outs / per) + c / per] |= (z[g][c] - 1) << (bits * (c % per));   // stored minus one
            }
        }
        short[] scales = new short[groups * outs];
        for (int g = 0; g < groups; g++) {
            for (int c = 0; c < outs; c++) {
                scales[g * outs + c] = (short) s[g][c];
            }
        }
        int[] gIdx = new int[ins];
        for (int i = 0; i < ins; i++) {
            gIdx[i] = i / group;
        }
        out.add(Tensor.ints(prefix + ".qweight", qweight, ins / per, outs));
        out.add(Tensor.ints(prefix + ".qzeros", qzeros, groups, outs / per));
        out.add(Tensor.shorts(prefix + ".scales", scales, groups, outs));
        out.add(Tensor.ints(prefix + ".g_idx", gIdx, ins));
        quants.put(prefix + ".q", q);
        quants.put(prefix + ".z", z);
        quants.put(prefix + ".s", s);
    }

    private static Tensor f16(String name, Matrix m) {
        short[] v = new short[m.rows() * m.cols()];
        for (int r = 0; r < m.rows(); r++) {
            for (int c = 0; c < m.cols(); c++) {
                v[r * m.cols() + c] = Float.floatToFloat16(QuantBlocks.element(m, r, c));
            }
        }
        return Tensor.shorts(name, v, m.rows(), m.cols());
    }

    private static Tensor vector(String name, float[] v) {
        short[] s = new short[v.length];
        for (int i = 0; i < v.length; i++) {
            s[i] = Float.floatToFloat16(v[i]);
        }
        return Tensor.shorts(name, s, v.length);
    }

    /** A tensor for the minimal safetensors writer below: dtype tag, shape, little-endian bytes. */
    record Tensor(String name, String dtype, long[] shape, byte[] bytes) {
        static Tensor ints(String name, int[] v, long... shape) {
            ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
            for (int x : v) {
                b.putInt(x);
            }
            return new Tensor(name, "I32", shape, b.array());
        }

        static Tensor shorts(String name, short[] v, long... shape) {
            ByteBuffer b = ByteBuffer.allocate(2 * v.length).order(ByteOrder.LITTLE_ENDIAN);
            for (short x : v) {
                b.putShort(x);
            }
            return new Tensor(name, "F16", shape, b.array());
        }
    }

    /** Through the project's writer, each tensor's bytes copied into its slice. */
    private static void writeSafetensors(Path file, List<Tensor> tensors) {
        SafeTensorsWriter.write(file, tensors.stream().map(t -> new SafeTensorsWriter.TensorSpec(t.name(), t.dtype(),
                t.shape(), slice -> MemorySegment.copy(MemorySegment.ofArray(t.bytes()), 0, slice, 0, t.bytes().length)))
                .toList());
    }
}
