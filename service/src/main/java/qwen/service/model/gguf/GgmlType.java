package qwen.service.model.gguf;

import qwen.service.model.DType;

/**
 * ggml tensor type ids as GGUF tensor infos store them, with the {@link DType} each loads as
 * (null for the types this server does not compute with).
 */
public enum GgmlType {
    F32(0, DType.F32),
    F16(1, DType.F16),
    Q4_0(2, DType.Q4_0),
    Q4_1(3, DType.Q4_1),
    Q5_0(6, DType.Q5_0),
    Q5_1(7, DType.Q5_1),
    Q8_0(8, DType.Q8_0),
    Q8_1(9, null),
    Q2_K(10, null),
    Q3_K(11, null),
    Q4_K(12, DType.Q4_K),
    Q5_K(13, DType.Q5_K),
    Q6_K(14, DType.Q6_K),
    Q8_K(15, null),
    IQ2_XXS(16, null),
    IQ2_XS(17, null),
    IQ3_XXS(18, null),
    IQ1_S(19, null),
    IQ4_NL(20, null),
    IQ3_S(21, null),
    IQ2_S(22, null),
    IQ4_XS(23, null),
    I8(24, null),
    I16(25, null),
    I32(26, null),
    I64(27, null),
    F64(28, null),
    IQ1_M(29, null),
    BF16(30, DType.BF16);

    private final int id;
    private final DType dtype;

    GgmlType(int id, DType dtype) {
        this.id = id;
        this.dtype = dtype;
    }

    /** The id in GGUF tensor infos. */
    public int id() {
        return id;
    }

    /** The type it loads as; null when not supported. */
    public DType dtype() {
        return dtype;
    }

    /** The ggml type of a DType. */
    public static GgmlType of(DType dtype) {
        for (GgmlType t : values()) {
            if (t.dtype == dtype) {
                return t;
            }
        }
        throw new IllegalArgumentException(dtype + " has no ggml type");
    }

    /** The type with this id; null for an id ggml does not define. */
    public static GgmlType ofId(int id) {
        for (GgmlType t : values()) {
            if (t.id == id) {
                return t;
            }
        }
        return null;
    }
}
