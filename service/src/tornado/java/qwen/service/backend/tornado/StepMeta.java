package qwen.service.backend.tornado;

/**
 * Layout of the step's integer inputs, one {@code IntArray} sent to the device with every step.
 * Kernels read their row count and per-row facts from it, so one compiled plan serves every
 * batch shape up to {@code maxRows} rows.
 *
 * <pre>
 * index                         what
 * ROWS                          T: token rows in this step (all chunks, in order)
 * LOGIT_ROWS                    rows whose logits the head computes
 * TILED_FROM                    row counts from which the linear kernels take their tiled way
 * TENSOR_CORES                  tiled steps of at least this many tensor-core blocks run on the tensor
 *                               cores (PTX devices); 0: none do
 * tokens()    + t               token id of row t
 * positions() + t               absolute position of row t in its sequence
 * slots()     + t               float offset of row t's key row inside a layer's KV arena
 * pageBase()  + t               where row t's sequence's page list starts in the page table
 * logitRows() + i               row index of the i-th logits row
 * pageTable() + p               device page ids, one list per chunk
 * </pre>
 *
 * @param maxRows most token rows per step
 * @param maxPages device pages in the KV arena (bounds the page table)
 */
record StepMeta(int maxRows, int maxPages) {

    static final int ROWS = 0;
    static final int LOGIT_ROWS = 1;
    static final int TILED_FROM = 2;
    static final int TENSOR_CORES = 3;
    private static final int HEADER = 4;

    int tokens() {
        return HEADER;
    }

    int positions() {
        return HEADER + maxRows;
    }

    int slots() {
        return HEADER + 2 * maxRows;
    }

    int pageBase() {
        return HEADER + 3 * maxRows;
    }

    int logitRows() {
        return HEADER + 4 * maxRows;
    }

    int pageTable() {
        return HEADER + 5 * maxRows;
    }

    int size() {
        return pageTable() + maxPages;
    }
}
