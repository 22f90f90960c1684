package qwen.service.model;

import java.lang.foreign.MemorySegment;

/**
 * A row-major weight matrix of shape [rows, cols] in the checkpoint's own dtype, usually a
 * read-only view into a memory-mapped file. PyTorch's Linear layout: one row per output feature,
 * so y = W x reads row r for output r. Never copied onto the heap.
 *
 * @param name checkpoint tensor name, for error messages
 * @param dtype element type of {@code data}
 * @param rows output features
 * @param cols input features
 * @param data rows * dtype.rowBytes(cols) bytes, little-endian, row-major (for a block-quantized
 *     dtype each row is cols / blockSize blocks; {@link DType#rowGrouped} types interleave groups of 16 rows)
 */
public record Matrix(String name, DType dtype, int rows, int cols, MemorySegment data) {

    public Matrix {
        if (cols % dtype.blockSize() != 0) {
            throw new IllegalArgumentException(name + ": " + cols + " columns is not a multiple of the "
                    + dtype.tag() + " block size " + dtype.blockSize());
        }
        if (dtype.rowGrouped() && rows % RowGroups.ROWS != 0) {
            throw new IllegalArgumentException(name + ": " + rows + " rows is not a whole number of "
                    + RowGroups.ROWS + "-row groups, which " + dtype.tag() + " needs");
        }
        long expected = rows * dtype.rowBytes(cols);
        if (data.byteSize() != expected) {
            throw new IllegalArgumentException(name + ": " + data.byteSize() + " bytes for ["
                    + rows + ", " + cols + "] " + dtype.tag() + ", expected " + expected);
        }
    }

    /** Bytes of one row. */
    public long rowBytes() {
        return dtype.rowBytes(cols);
    }

    /** Bytes one full pass over this matrix reads. */
    public long byteSize() {
        return data.byteSize();
    }

    /**
     * Drops this matrix's pages from the process's resident set where it is a view of a mapped
     * file (madvise DONTNEED on a read-only mapping: the page cache keeps them, and a later read
     * maps them again with a minor fault); a matrix in memory is left as it is.
     */
    public void releasePages() {
        release(data);
    }

    /** {@link #releasePages()} for any segment. */
    public static void release(MemorySegment segment) {
        if (segment.isMapped()) {
            segment.unload();
        }
    }
}
