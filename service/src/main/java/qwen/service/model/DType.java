package qwen.service.model;

/**
 * Weight types: the element types of safetensors checkpoints (F32, F16, BF16) and the block
 * quantizations of GGUF files (Q8_0, Q4_0, Q5_0, Q4_1, Q5_1 and the K-quants Q4_K, Q5_K, Q6_K), which store a row as
 * blocks of {@link #blockSize()} elements in {@link #blockBytes()} bytes each (byte layouts as
 * ggml's; the K-quants are decoded by {@link KQuantBlocks}).
 *
 * <pre>
 * Q8_0 block (34 bytes, 32 weights):  f16 d, int8 q[32];        w[i] = d * q[i]
 * Q4_0 block (18 bytes, 32 weights):  f16 d, uint8 qs[16];      w[i]      = d * ((qs[i] &amp; 15) - 8)
 *                                                              w[i + 16] = d * ((qs[i] &gt;&gt; 4) - 8)
 * Q5_0 block (22 bytes, 32 weights):  f16 d, uint32 qh, uint8 qs[16];
 *                                     w[i] = d * ((qs[i] &amp; 15 | bit i of qh &lt;&lt; 4) - 16),
 *                                     w[i + 16] = d * ((qs[i] &gt;&gt; 4 | bit i + 16 of qh &lt;&lt; 4) - 16)
 * Q4_1 block (20 bytes, 32 weights):  f16 d, f16 m, uint8 qs[16]; w[i] = d * (qs[i] &amp; 15) + m,
 *                                                              w[i + 16] = d * (qs[i] &gt;&gt; 4) + m
 * Q5_1 block (24 bytes, 32 weights):  f16 d, f16 m, uint32 qh, uint8 qs[16];
 *                                     w[i] = d * (qs[i] &amp; 15 | bit i of qh &lt;&lt; 4) + m,
 *                                     w[i + 16] = d * (qs[i] &gt;&gt; 4 | bit i + 16 of qh &lt;&lt; 4) + m
 * Q4_K block (144 bytes, 256 weights): f16 d, f16 dmin, 12 bytes of 6-bit scales sc[8] and mins m[8],
 *                                     uint8 qs[128]; sub-block j of 32: w = d * sc[j] * q - dmin * m[j]
 * Q5_K block (176 bytes, 256 weights): Q4_K's d, dmin and scales, uint8 qh[32], uint8 qs[128];
 *                                     q = nibble | bit j of qh[i % 32] &lt;&lt; 4 in [0, 31], w as Q4_K
 * Q6_K block (210 bytes, 256 weights): uint8 ql[128] (low 4 bits), uint8 qh[64] (high 2 bits),
 *                                     int8 scales[16] (one per 16 weights), f16 d; w = d * scale * (q - 32)
 * Q4_G128 block (66 bytes, 128 weights): f16 d, then four Q4_0 bodies uint8 qs[16] of 32 weights
 *                                     each, all scaled by d; w = d * (nibble - 8) as Q4_0
 * Q4_0_R16 (rows in groups of 16; 320 bytes per group and 32 columns, 20 per row):
 *                                     f32 d[16] (row i's Q4_0 scale), then for j in 0..15 the 16 rows'
 *                                     byte j: row i's Q4_0 qs[j] with its high nibble XOR 8;
 *                                     w[i][j] = d[i] * ((byte &amp; 15) - 8), w[i][j + 16] = d[i] * (byte &gt;&gt; 4)
 *                                     with the byte signed, so the high nibble reads as q - 8
 * Q8_0_R16 (rows in groups of 16; 576 bytes per group and 32 columns, 36 per row):
 *                                     f32 d[16] (row i's Q8_0 scale), then for j in 0..31 the 16 rows'
 *                                     quant j, row i at byte 2 i and row i + 8 at byte 2 i + 1
 *                                     (RowGroups.Q8_LANES); w[i][j] = d[i] * q
 * </pre>
 *
 * <p>Q4_G128 is not a GGUF type: it holds GPTQ Int4 checkpoints (SPEC 7), whose symmetric groups
 * of 128 weights share one scale. As Q4_0 blocks each group would carry its scale four times.
 *
 * <p>Q4_0_R16 and Q8_0_R16 are not file types either: {@link RowGroups} re-lays Q4_0 and Q8_0
 * matrices in them on load for the CPU kernels, whose one-token dot product then runs down the 16
 * rows of a group in the lanes of one vector (the same values; see {@code GroupDot}).
 */
public enum DType {
    F32("F32", 1, 4),
    F16("F16", 1, 2),
    BF16("BF16", 1, 2),
    Q8_0("Q8_0", 32, 34),
    Q4_0("Q4_0", 32, 18),
    Q5_0("Q5_0", 32, 22),
    Q4_1("Q4_1", 32, 20),
    Q5_1("Q5_1", 32, 24),
    Q4_K("Q4_K", 256, 144),
    Q5_K("Q5_K", 256, 176),
    Q6_K("Q6_K", 256, 210),
    Q4_G128("Q4_G128", 128, 66),
    Q4_0_R16("Q4_0_R16", 32, 20),
    Q8_0_R16("Q8_0_R16", 32, 36);

    private final String tag;
    private final int blockSize;
    private final int blockBytes;

    DType(String tag, int blockSize, int blockBytes) {
        this.tag = tag;
        this.blockSize = blockSize;
        this.blockBytes = blockBytes;
    }

    /** The type's name: the safetensors dtype string for element types ("F32", "F16", "BF16"). */
    public String tag() {
        return tag;
    }

    /** Bytes per element of an element type; block-quantized types have none (see {@link #rowBytes}). */
    public int bytes() {
        if (quantized()) {
            throw new UnsupportedOperationException(tag + " is block-quantized: use rowBytes(cols)");
        }
        return blockBytes;
    }

    /** Elements per block: 1 for element types. */
    public int blockSize() {
        return blockSize;
    }

    /** Bytes per block (per element for element types). */
    public int blockBytes() {
        return blockBytes;
    }

    /** True for the block-quantized types. */
    public boolean quantized() {
        return blockSize > 1;
    }

    /** True for Q4_1 and Q5_1: 32-weight blocks with a min m of their own, w = d * q + m for q &gt;= 0. */
    public boolean withMin() {
        return this == Q4_1 || this == Q5_1;
    }

    /**
     * Bytes from the start of the block to the quants of its 32-weight part {@code part}: Q4_0
     * bodies follow the scale one after the other in a Q4_G128 block.
     */
    public int partOffset(int part) {
        return this == Q4_G128 ? 2 + 16 * part : 2;
    }

    /** True for the types {@link RowGroups} re-lays in groups of 16 interleaved rows (Q4_0_R16, Q8_0_R16). */
    public boolean rowGrouped() {
        return this == Q4_0_R16 || this == Q8_0_R16;
    }

    /** True for the K-quants (blocks of 256 with scales of their own per sub-block). */
    public boolean kQuant() {
        return blockSize == 256;
    }

    /** Bytes of a row of {@code cols} elements; cols must be a multiple of {@link #blockSize()}. */
    public long rowBytes(long cols) {
        return cols / blockSize * blockBytes;
    }

    /** Parses a safetensors dtype tag; null when the tag names a type safetensors files may not hold. */
    public static DType ofTag(String tag) {
        for (DType t : values()) {
            if (!t.quantized() && t.tag.equals(tag)) {
                return t;
            }
        }
        return null;
    }
}
