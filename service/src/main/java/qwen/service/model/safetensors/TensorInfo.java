package qwen.service.model.safetensors;

import java.util.Arrays;
import java.util.Map;
import qwen.service.model.DType;

/**
 * One entry of a safetensors header.
 *
 * @param name tensor name, e.g. {@code transformer.h.0.attn.c_attn.weight}
 * @param dtypeTag the header's dtype string as written ("BF16", "F16", "F32", or any other tag)
 * @param shape dimensions, outermost first (PyTorch order)
 * @param begin first byte of the tensor, relative to the start of the data section (after the header)
 * @param end one past the last byte, relative to the start of the data section
 */
public record TensorInfo(String name, String dtypeTag, long[] shape, long begin, long end) {

    /** Bytes per element of every dtype the safetensors format defines, so sizes can be checked. */
    private static final Map<String, Integer> FORMAT_DTYPE_BYTES = Map.ofEntries(
            Map.entry("BOOL", 1), Map.entry("U8", 1), Map.entry("I8", 1),
            Map.entry("F8_E5M2", 1), Map.entry("F8_E4M3", 1),
            Map.entry("I16", 2), Map.entry("U16", 2), Map.entry("F16", 2), Map.entry("BF16", 2),
            Map.entry("I32", 4), Map.entry("U32", 4), Map.entry("F32", 4),
            Map.entry("I64", 8), Map.entry("U64", 8), Map.entry("F64", 8));

    public TensorInfo {
        shape = shape.clone();
    }

    /** The dtype, or null when the tag names a type this server does not load (e.g. I8, F64). */
    public DType dtype() {
        return DType.ofTag(dtypeTag);
    }

    /** A defensive copy of the shape. */
    @Override
    public long[] shape() {
        return shape.clone();
    }

    /** Number of dimensions. */
    public int rank() {
        return shape.length;
    }

    /** Size of dimension {@code i}. */
    public long dim(int i) {
        return shape[i];
    }

    /** Product of the dimensions (1 for a scalar); throws ArithmeticException on overflow. */
    public long elementCount() {
        long count = 1;
        for (long d : shape) {
            count = Math.multiplyExact(count, d);
        }
        return count;
    }

    /** Bytes the data offsets cover. */
    public long byteSize() {
        return end - begin;
    }

    /** Whether the shape equals {@code expected}. */
    public boolean hasShape(long... expected) {
        return Arrays.equals(shape, expected);
    }

    /** The shape as "[a, b]", for messages. */
    public String shapeText() {
        return Arrays.toString(shape);
    }

    /** Bytes per element of a safetensors dtype tag, or -1 when the format does not define the tag. */
    static int formatBytes(String tag) {
        return FORMAT_DTYPE_BYTES.getOrDefault(tag, -1);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorInfo t && name.equals(t.name) && dtypeTag.equals(t.dtypeTag)
                && Arrays.equals(shape, t.shape) && begin == t.begin && end == t.end;
    }

    @Override
    public int hashCode() {
        return name.hashCode() * 31 + Arrays.hashCode(shape);
    }

    @Override
    public String toString() {
        return name + " " + dtypeTag + shapeText() + " @[" + begin + ", " + end + ")";
    }
}
