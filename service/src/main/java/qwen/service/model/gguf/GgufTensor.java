package qwen.service.model.gguf;

import java.lang.foreign.MemorySegment;

/**
 * One tensor of a GGUF file.
 *
 * @param name tensor name, e.g. "blk.0.attn_qkv.weight"
 * @param dims dimensions as GGUF lists them, innermost (contiguous) first: a PyTorch [rows, cols]
 *     matrix is [cols, rows]
 * @param type its ggml type
 * @param offset byte offset of its data from the start of the data section
 * @param data its bytes, a view into the mapped file
 */
public record GgufTensor(String name, long[] dims, GgmlType type, long offset, MemorySegment data) {

    /** Number of elements. */
    public long elements() {
        long n = 1;
        for (long d : dims) {
            n *= d;
        }
        return n;
    }

    /** The dims as text, innermost first as in GGUF. */
    public String shapeText() {
        return java.util.Arrays.toString(dims);
    }
}
