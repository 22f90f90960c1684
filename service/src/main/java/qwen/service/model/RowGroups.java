package qwen.service.model;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;

/**
 * Q4_0 matrices re-laid as {@link DType#Q4_0_R16} for the CPU kernels: the same scales and nibbles,
 * with 16 rows interleaved byte by byte, so that one 16-byte load holds the same column of 16 rows.
 * A one-token dot product then runs down those rows in the 16 lanes of a vector and keeps each
 * block's integer sums in 16-bit lanes until the block ends, with no sum across lanes; in a
 * row-major Q4_0 row every block ends in one (about 1.5x the weights per second on a Zen 1 core).
 *
 * <p>Only the matrices the kernels multiply are re-laid (the blocks' and the head's); the
 * embedding is read a row at a time and stays as it is. A matrix whose rows are not a multiple of
 * 16 stays Q4_0. The copy lives in an arena of its own; the source's mapped pages are released as
 * each matrix is done, so the resident set holds one copy of the weights.
 */
public final class RowGroups {

    /** Rows per group. */
    public static final int ROWS = 16;
    /** Bytes of a group's scales per 32 columns: one f32 per row. */
    public static final int SCALE_BYTES = 4 * ROWS;
    /** Bytes of a group per 32 columns: the scales and 16 bytes of nibbles per row. */
    public static final int GROUP_BLOCK_BYTES = SCALE_BYTES + 16 * ROWS;

    private static final ValueLayout.OfShort LE_SHORT =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat LE_FLOAT =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LE_LONG =
            ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private RowGroups() {
    }

    /** Whether {@link #of} applies to m: Q4_0 with a whole number of groups of rows. */
    public static boolean applies(Matrix m) {
        return m != null && m.dtype() == DType.Q4_0 && m.rows() % ROWS == 0;
    }

    /** Byte offset of the group block that holds element (row, col) of a Q4_0_R16 matrix. */
    public static long block(Matrix w, int row, int col) {
        return ((long) (row / ROWS) * (w.cols() / 32) + col / 32) * GROUP_BLOCK_BYTES;
    }

    /** m (Q4_0, rows a multiple of 16) as Q4_0_R16 in arena: every element the same. */
    public static Matrix of(Matrix m, Arena arena) {
        if (!applies(m)) {
            throw new IllegalArgumentException(m.name() + " is [" + m.rows() + ", " + m.cols() + "] " + m.dtype().tag()
                    + "; Q4_0_R16 is made from Q4_0 with a multiple of " + ROWS + " rows");
        }
        int blocks = m.cols() / 32;
        long rowBytes = m.rowBytes();
        MemorySegment src = m.data();
        MemorySegment out = arena.allocate((long) m.rows() / ROWS * blocks * GROUP_BLOCK_BYTES, 64);
        IntStream.range(0, m.rows() / ROWS).parallel().forEach(g -> {
            for (int b = 0; b < blocks; b++) {
                long to = ((long) g * blocks + b) * GROUP_BLOCK_BYTES;
                for (int i = 0; i < ROWS; i++) {
                    long from = (long) (g * ROWS + i) * rowBytes + 18L * b;
                    out.set(LE_FLOAT, to + 4L * i, Float.float16ToFloat(src.get(LE_SHORT, from)));
                    long lo = src.get(LE_LONG, from + 2);
                    long hi = src.get(LE_LONG, from + 10);
                    for (int j = 0; j < 8; j++) {
                        long at = to + SCALE_BYTES + (long) ROWS * j + i;
                        out.set(ValueLayout.JAVA_BYTE, at, (byte) ((lo >>> 8 * j) ^ 0x80));
                        out.set(ValueLayout.JAVA_BYTE, at + 8L * ROWS, (byte) ((hi >>> 8 * j) ^ 0x80));
                    }
                }
            }
        });
        m.releasePages();
        return new Matrix(m.name(), DType.Q4_0_R16, m.rows(), m.cols(), out);
    }

    /**
     * The weights with every Q4_0 matrix of the blocks and the head re-laid ({@link #applies});
     * the same weights when none is. Closing the result frees the copies and closes the source.
     */
    public static ShardWeights apply(ShardWeights w) {
        boolean any = applies(w.lmHead()) || w.layers().stream().anyMatch(l -> applies(l.cAttn())
                || applies(l.attnCProj()) || applies(l.w1()) || applies(l.w2()) || applies(l.mlpCProj()));
        if (!any) {
            return w;
        }
        Arena arena = Arena.ofShared();
        try {
            List<LayerWeights> layers = new ArrayList<>();
            for (LayerWeights l : w.layers()) {
                layers.add(new LayerWeights(l.index(), l.ln1(), relaid(l.cAttn(), arena), l.cAttnBias(),
                        relaid(l.attnCProj(), arena), l.ln2(), relaid(l.w1(), arena), relaid(l.w2(), arena),
                        relaid(l.mlpCProj(), arena)));
            }
            AutoCloseable source = w.resources();
            return new ShardWeights(w.config(), w.range(), w.wte(), List.copyOf(layers), w.lnF(),
                    w.lmHead() == null ? null : relaid(w.lmHead(), arena), () -> {
                        try (arena) {
                            source.close();
                        }
                    });
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static Matrix relaid(Matrix m, Arena arena) {
        return applies(m) ? of(m, arena) : m;
    }
}
