package qwen.service.model;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import qwen.service.backend.cpu.CpuBackend;
import qwen.service.backend.cpu.Kernels;
import qwen.service.backend.cpu.VectorKernels;
import qwen.service.engine.Generator;
import qwen.service.engine.ShardEngine;
import qwen.service.kv.KvPool;
import qwen.service.sampling.SamplingParams;

/** Test helpers: the f32 twin of any weights (every matrix dequantized), and greedy generation on weights. */
public final class F32Twin {

    private static final ValueLayout.OfFloat LE_FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private F32Twin() {
    }

    /**
     * Logprob tolerance between the vector kernels and the scalar reference on block-quantized
     * weights: the vector kernels quantize decode activations to 8 bits (each value moved by at
     * most half a step, 1/254 of its block's largest), which moves these small random models'
     * logprobs by up to a few 1e-3; 3e-2 leaves room and still catches a wrong block or scale.
     */
    public static final double QUANTIZED_ACTIVATION_TOLERANCE = 3e-2;

    /**
     * Asserts that fast (vector kernels, 8-bit decode activations) follows exact (scalar
     * reference) on the same quantized weights: the first token equal, and while the
     * continuations agree, each step's logprob within {@link #QUANTIZED_ACTIVATION_TOLERANCE}
     * (a near tie may later pick another token, after which the steps are not comparable).
     */
    public static void assertFollows(Generator.Result exact, Generator.Result fast) {
        org.junit.jupiter.api.Assertions.assertEquals(exact.ids()[0], fast.ids()[0], "first token");
        for (int k = 0; k < exact.samples().size() && k < fast.samples().size(); k++) {
            org.junit.jupiter.api.Assertions.assertEquals(exact.samples().get(k).logprob(), fast.samples().get(k).logprob(),
                    QUANTIZED_ACTIVATION_TOLERANCE, "step " + k);
            if (exact.ids()[k] != fast.ids()[k]) {
                break;
            }
        }
    }

    /** Every matrix dequantized element by element through the reference decoder, in the arena. */
    public static ShardWeights of(ShardWeights w, Arena arena) {
        List<LayerWeights> layers = new ArrayList<>();
        for (LayerWeights l : w.layers()) {
            layers.add(new LayerWeights(l.index(), l.ln1(), f32(l.cAttn(), arena), l.cAttnBias(), f32(l.attnCProj(), arena),
                    l.ln2(), f32(l.w1(), arena), f32(l.w2(), arena), f32(l.mlpCProj(), arena)));
        }
        return new ShardWeights(w.config(), w.range(), f32(w.wte(), arena), layers, w.lnF(), f32(w.lmHead(), arena), () -> { });
    }

    public static Matrix f32(Matrix m, Arena arena) {
        MemorySegment s = arena.allocate(4L * m.rows() * m.cols(), 64);
        float[] row = new float[m.cols()];
        for (int r = 0; r < m.rows(); r++) {
            QuantBlocks.row(m, r, row, 0);
            MemorySegment.copy(row, 0, s, LE_FLOAT, 4L * r * m.cols(), row.length);
        }
        return new Matrix(m.name(), DType.F32, m.rows(), m.cols(), s);
    }

    /** Greedy generation with the vector kernels on these weights, leaving them open. */
    public static Generator.Result generate(ShardWeights w, int[] prompt, int tokens) {
        return generate(w, prompt, tokens, new VectorKernels(2));
    }

    /** Greedy generation with the given kernels on these weights, leaving them open. */
    public static Generator.Result generate(ShardWeights w, int[] prompt, int tokens, Kernels kernels) {
        ShardWeights view = new ShardWeights(w.config(), w.range(), w.wte(), w.layers(), w.lnF(), w.lmHead(), () -> { });
        try (ShardEngine e = new ShardEngine(new CpuBackend(view, kernels, "test"),
                new KvPool(w.config().projDim(), 16L << 20))) {
            return Generator.generate(e, prompt, tokens, SamplingParams.greedy(1), Set.of(), id -> { });
        }
    }
}
