package qwen.service.model;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;

/**
 * Q4_0 and Q8_0 matrices re-laid as {@link DType#Q4_0_R16} / {@link DType#Q8_0_R16} for the CPU
 * kernels: the same scales and quants, with 16 rows interleaved byte by byte, so that one 16-byte
 * load holds the same column of 16 rows. A one-token dot product then runs down those rows in the
 * 16 lanes of a vector and keeps each block's integer sums in its lanes until the block ends, with
 * no sum across lanes and no scalar work per block; in a row-major row every block ends in both.
 * The interleaved group is also one sequential stream of memory where row-major rows are sixteen,
 * which matters as much when the matrix comes from memory and not cache (`BlockKernelProbe` at
 * 16384 rows, one Zen 1 core: Q8_0 3.7 G weights/s, Q8_0_R16 5.1 to 5.6; Q4_0 4.4, Q4_0_R16 7.4).
 *
 * <p>Only the matrices the kernels multiply are re-laid (the blocks' and the head's); the
 * embedding is read a row at a time and stays as it is. A matrix whose rows are not a multiple of
 * 16 stays as it is. The copy lives in an arena of its own; the source's mapped pages are released
 * as each matrix is done, so the resident set holds one copy of the weights (the f32 scales make
 * it 11% larger than Q4_0, 6% than Q8_0).
 */
public final class RowGroups {

    /** Rows per group. */
    public static final int ROWS = 16;
    /** Bytes of a group's scales per 32 columns: one f32 per row. */
    public static final int SCALE_BYTES = 4 * ROWS;

    private static final ValueLayout.OfShort LE_SHORT =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat LE_FLOAT =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LE_LONG =
            ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private RowGroups() {
    }

    /** Whether {@link #of} applies to m: Q4_0 or Q8_0 with a whole number of groups of rows. */
    public static boolean applies(Matrix m) {
        return m != null && (m.dtype() == DType.Q4_0 || m.dtype() == DType.Q8_0) && m.rows() % ROWS == 0;
    }

    /** Bytes of a group of a row-grouped type per 32 columns: the scales and the 16 rows' quants. */
    public static int groupBlockBytes(DType type) {
        if (!type.rowGrouped()) {
            throw new IllegalArgumentException(type.tag() + " is not laid out in row groups");
        }
        return ROWS * type.blockBytes();
    }

    /** Byte offset of the group block that holds element (row, col) of a row-grouped matrix. */
    public static long block(Matrix w, int row, int col) {
        return ((long) (row / ROWS) * (w.cols() / 32) + col / 32) * groupBlockBytes(w.dtype());
    }

    /**
     * Byte offset of the byte that holds the quant of element (row, col) of a row-grouped matrix:
     * column j of a block is at 16 (j % 16) + the row's lane in Q4_0_R16 (columns j and j + 16 share
     * a byte), at 16 j + {@link #q8Lane} in Q8_0_R16.
     */
    public static long quantByte(Matrix w, int row, int col) {
        int i = row % ROWS;
        int j = col % 32;
        long column = w.dtype() == DType.Q4_0_R16 ? (long) ROWS * (j % 16) + i : (long) ROWS * j + q8Lane(i);
        return block(w, row, col) + SCALE_BYTES + column;
    }

    /**
     * Where row i of a group sits among the 16 bytes of a Q8_0_R16 column: rows 0..7 at the even
     * bytes, rows 8..15 at the odd ones. Widened to 16-bit lanes and read as eight 32-bit lanes,
     * a column's products then hold rows 0..7 in their low halves and rows 8..15 in their high
     * halves, which two shifts separate in row order ({@code GroupDot}).
     */
    public static int q8Lane(int i) {
        return i < ROWS / 2 ? 2 * i : 2 * (i - ROWS / 2) + 1;
    }

    /** m (Q4_0 or Q8_0, rows a multiple of 16) re-laid in row groups in arena: every element the same. */
    public static Matrix of(Matrix m, Arena arena) {
        if (!applies(m)) {
            throw new IllegalArgumentException(m.name() + " is [" + m.rows() + ", " + m.cols() + "] " + m.dtype().tag()
                    + "; row groups are made from Q4_0 or Q8_0 with a multiple of " + ROWS + " rows");
        }
        DType to = m.dtype() == DType.Q4_0 ? DType.Q4_0_R16 : DType.Q8_0_R16;
        int blocks = m.cols() / 32;
        long groupBlock = groupBlockBytes(to);
        MemorySegment out = arena.allocate((long) m.rows() / ROWS * blocks * groupBlock, 64);
        IntStream.range(0, m.rows() / ROWS).parallel().forEach(g -> {
            for (int b = 0; b < blocks; b++) {
                long at = ((long) g * blocks + b) * groupBlock;
                if (to == DType.Q4_0_R16) {
                    q4Block(m, g, b, out, at);
                } else {
                    q8Block(m, g, b, out, at);
                }
            }
        });
        m.releasePages();
        return new Matrix(m.name(), to, m.rows(), m.cols(), out);
    }

    /** Block b of group g of a Q4_0 matrix to out at byte to: each row's byte j at 16 j + i, its high nibble XOR 8. */
    private static void q4Block(Matrix m, int g, int b, MemorySegment out, long to) {
        MemorySegment src = m.data();
        for (int i = 0; i < ROWS; i++) {
            long from = (long) (g * ROWS + i) * m.rowBytes() + 18L * b;
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

    /** Block b of group g of a Q8_0 matrix to out at byte to: each row's quant j at 16 j + {@link #q8Lane}(i). */
    private static void q8Block(Matrix m, int g, int b, MemorySegment out, long to) {
        MemorySegment src = m.data();
        byte[] rows = new byte[32 * ROWS];
        for (int i = 0; i < ROWS; i++) {
            long from = (long) (g * ROWS + i) * m.rowBytes() + 34L * b;
            out.set(LE_FLOAT, to + 4L * i, Float.float16ToFloat(src.get(LE_SHORT, from)));
            MemorySegment.copy(src, ValueLayout.JAVA_BYTE, from + 2, rows, 32 * i, 32);
        }
        byte[] columns = new byte[32 * ROWS];
        for (int i = 0; i < ROWS; i++) {
            int lane = q8Lane(i);
            for (int j = 0; j < 32; j++) {
                columns[ROWS * j + lane] = rows[32 * i + j];
            }
        }
        MemorySegment.copy(columns, 0, out, ValueLayout.JAVA_BYTE, to + SCALE_BYTES, columns.length);
    }

    /**
     * The weights with every Q4_0 and Q8_0 matrix of the blocks and the head re-laid ({@link #applies});
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
