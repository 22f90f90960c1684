package qwen.service.model;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import qwen.service.backend.cpu.CpuBackend;
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
        ShardWeights view = new ShardWeights(w.config(), w.range(), w.wte(), w.layers(), w.lnF(), w.lmHead(), () -> { });
        try (ShardEngine e = new ShardEngine(new CpuBackend(view, new VectorKernels(2), "test"),
                new KvPool(w.config().projDim(), 16L << 20))) {
            return Generator.generate(e, prompt, tokens, SamplingParams.greedy(1), Set.of(), id -> { });
        }
    }
}
