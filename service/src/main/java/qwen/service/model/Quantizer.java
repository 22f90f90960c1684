package qwen.service.model;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;

/**
 * Quantize-on-load: re-encodes every matrix of loaded weights (the blocks, the embedding and the
 * head) as Q8_0 or Q4_0 in off-heap memory, with the encoders of {@link QuantBlocks}, so a BF16
 * checkpoint runs on the quantized kernels. Norms and the bias stay f32. The source weights are
 * closed (unmapped) with the result.
 */
public final class Quantizer {

    private Quantizer() {
    }

    /**
     * The weights with every matrix in {@code type}. Every matrix width must be a multiple of 32
     * (true of Qwen-1.8B: 2048 and 5504); otherwise the error names the matrix.
     */
    public static ShardWeights quantize(ShardWeights w, DType type) {
        if (!type.quantized()) {
            throw new IllegalArgumentException("quantize-on-load targets Q8_0 or Q4_0, not " + type.tag());
        }
        Arena arena = Arena.ofShared();
        try {
            List<LayerWeights> layers = new ArrayList<>();
            for (LayerWeights l : w.layers()) {
                layers.add(new LayerWeights(l.index(), l.ln1(), encode(l.cAttn(), type, arena), l.cAttnBias(),
                        encode(l.attnCProj(), type, arena), l.ln2(), encode(l.w1(), type, arena),
                        encode(l.w2(), type, arena), encode(l.mlpCProj(), type, arena)));
            }
            Matrix wte = w.wte() == null ? null : encode(w.wte(), type, arena);
            Matrix head = w.lmHead() == null ? null : encode(w.lmHead(), type, arena);
            AutoCloseable source = w.resources();
            return new ShardWeights(w.config(), w.range(), wte, List.copyOf(layers), w.lnF(), head, () -> {
                try (arena) {
                    source.close();
                }
            });
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static Matrix encode(Matrix m, DType type, Arena arena) {
        if (m.dtype() == type) {
            return m;
        }
        if (m.cols() % type.blockSize() != 0) {
            throw new CheckpointException(m.name() + ": " + m.cols() + " columns cannot be quantized to " + type.tag()
                    + " (needs a multiple of " + type.blockSize() + ")");
        }
        long rowBytes = type.rowBytes(m.cols());
        MemorySegment out = arena.allocate(m.rows() * rowBytes, 64);
        IntStream.range(0, m.rows()).parallel().forEach(r -> {
            float[] row = new float[m.cols()];
            QuantBlocks.row(m, r, row, 0);
            QuantBlocks.encode(type, row, 0, row.length, out, r * rowBytes);
        });
        return new Matrix(m.name(), type, m.rows(), m.cols(), out);
    }
}
