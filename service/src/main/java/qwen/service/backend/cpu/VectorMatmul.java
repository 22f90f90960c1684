package qwen.service.backend.cpu;

import java.lang.foreign.MemorySegment;
import qwen.service.model.DType;
import qwen.service.model.Matrix;
import qwen.service.model.RowGroups;

/**
 * out[t, r] = w[r, :] . x[t, :] on all cores, rows split into contiguous ranges that the threads
 * claim in turn.
 *
 * <p>Decode (one token) streams the weights once, four rows at a time so each activation load
 * serves four rows and eight independent FMA chains hide the latency. Prefill (several tokens)
 * is compute-bound instead: each weight load feeds two tokens (4 rows x 2 tokens of
 * accumulators), columns are tiled so a block's weights stay in L1 across the token pairs, and
 * tokens are tiled so their activations stay in L2 across row blocks.
 *
 * <p>bf16 and f16 weights are loaded as int lanes of two elements; the activations are permuted
 * once per call into the matching {@link #pairLayout}.
 *
 * <p>The block-quantized types below {@link #PACKED_MIN_TOKENS} tokens read the quant blocks directly, with
 * the activations quantized to 8 bits ({@link QuantDot}; the row-grouped types a group of 16 rows at a time, {@link GroupDot}).
 *
 * <p>Prefill of at least {@link #PACKED_MIN_TOKENS} tokens with any weight type but F32 goes
 * through {@link PackedMatmul} instead (weights converted to f32 panels once per token tile, 6 rows x 16 tokens register
 * tile), in ranges of whole six-row panels; from {@link BroadcastMatmul#MIN_TOKENS} tokens through
 * {@link BroadcastMatmul}, the same blocking with the weights stored as vectors (the same bits).
 */
final class VectorMatmul {

    /**
     * Pairs of columns per column tile in bf16 prefill: 16 KiB of weights (4 rows x 4 KiB) and
     * 16 KiB of activations (2 tokens x 8 KiB) per pass, about one L1; at cols = 2048 a row is
     * one tile. (512 measured no better on a 32 KiB-L1 Zen core.)
     */
    private static final int PAIR_TILE = 1024;
    /** Activation bytes of one token tile, sized to stay in a 512 KiB L2 with the weights. */
    private static final int TOKEN_TILE_BYTES = 256 * 1024;

    /**
     * Row ranges per thread: several, claimed dynamically, so a thread that the OS preempts
     * (the cores may be shared) delays the call by one range rather than by its whole share.
     */
    private static final int CHUNKS_PER_THREAD = 8;
    /** Fewest four-row blocks in a range: 16 rows of 2048 bf16 are 64 KiB of weights. */
    private static final int MIN_CHUNK_BLOCKS = 4;
    /**
     * Row ranges per thread for prefill ({@link #packed}): a range there costs nothing to start, and
     * with 8 a 512-token c_attn range took about 28 ms of a thread, so the threads could finish that
     * far apart. With 32 the five matrices of a 1.8B block took a median 7% less time
     * (`PrefillProbe`, two threads, alternating with 8 in six rounds, better in five).
     */
    private static final int PACKED_CHUNKS_PER_THREAD = 32;
    /**
     * Fewest tokens for which bf16 weights go through {@link PackedMatmul}: measured on a Zen 1
     * core it beats the 4 x 2 kernel by ~15% from 48 tokens, breaks even at 24..32 and loses
     * ~8% at 16 (where each converted weight feeds only two FMAs).
     */
    static final int PACKED_MIN_TOKENS = 32;

    private final WorkerPool pool;
    private final float[][] tiles;
    private float[] permuted = new float[0];
    private float[] transposed = new float[0];
    private final Q8Activations activations = new Q8Activations();

    VectorMatmul(WorkerPool pool) {
        this.pool = pool;
        this.tiles = new float[pool.threads()][0];
    }

    void matmul(Matrix w, float[] x, int tokens, float[] out) {
        int rows = w.rows();
        int cols = w.cols();
        if (x.length < (long) tokens * cols || out.length < (long) tokens * rows) {
            throw new IllegalArgumentException(w.name() + ": x holds " + x.length + " and out "
                    + out.length + " floats, " + tokens + " tokens need " + (long) tokens * cols
                    + " and " + (long) tokens * rows);
        }
        if (tokens <= 0 || rows == 0) {
            return;
        }
        if (w.dtype() != DType.F32 && tokens >= PACKED_MIN_TOKENS) {
            packed(w, x, tokens, out);
            return;
        }
        if (w.dtype().quantized()) {
            quantized(w, x, tokens, out);
            return;
        }
        if (w.dtype() == DType.F16 && tokens == 1 && F16Dot.fits(cols)) {
            float[] xp = F16Dot.scale(pairLayout(x, 1, cols), cols);
            int pairs = (rows + 1) / 2;
            int chunk = Math.max(2 * MIN_CHUNK_BLOCKS, pairs / (CHUNKS_PER_THREAD * pool.threads()));
            pool.forEachChunk(pairs, chunk, (worker, p0, p1) ->
                    F16Dot.rows(w.data(), rows, cols, xp, 0, out, 2 * p0, Math.min(rows, 2 * p1)));
            return;
        }
        boolean natural = w.dtype() == DType.F32;
        float[] xs = natural ? x : pairLayout(x, tokens, cols);
        int blocks = (rows + 3) / 4;
        int chunk = Math.max(MIN_CHUNK_BLOCKS, blocks / (CHUNKS_PER_THREAD * pool.threads()));
        pool.forEachChunk(blocks, chunk, (worker, b0, b1) ->
                rowRange(w, xs, tokens, out, worker, 4 * b0, Math.min(rows, 4 * b1)));
    }

    /**
     * A few tokens times a Q8_0 / Q4_0 matrix: the activations quantized once, then each pair of
     * rows read block by block ({@link QuantDot}) for every token while it is in L1.
     */
    private void quantized(Matrix w, float[] x, int tokens, float[] out) {
        int rows = w.rows();
        int cols = w.cols();
        Q8Activations a = activations.quantize(x, tokens, cols);
        if (w.dtype().rowGrouped()) {
            a.spread(tokens, cols);
            int groups = rows / RowGroups.ROWS;
            int chunk = Math.max(1, groups / (CHUNKS_PER_THREAD * pool.threads()));
            pool.forEachChunk(groups, chunk, (worker, g0, g1) -> {
                for (int g = g0; g < g1; g++) {
                    for (int t = 0; t < tokens; t++) {
                        GroupDot.group(w, a, t, out, g);
                    }
                }
            });
            return;
        }
        int pairs = (rows + 1) / 2;
        int chunk = Math.max(2 * MIN_CHUNK_BLOCKS, pairs / (CHUNKS_PER_THREAD * pool.threads()));
        pool.forEachChunk(pairs, chunk, (worker, p0, p1) -> {
            int r1 = Math.min(rows, 2 * p1);
            for (int r = 2 * p0; r < r1; r += 2) {
                for (int t = 0; t < tokens; t++) {
                    QuantDot.rows(w.dtype(), w.data(), rows, cols, a, t, out, r, Math.min(r1, r + 2));
                }
            }
        });
    }

    /** Prefill through {@link PackedMatmul}, rows split into ranges of whole panels. */
    private void packed(Matrix w, float[] x, int tokens, float[] out) {
        int rows = w.rows();
        int cols = w.cols();
        int tp = PackedMatmul.paddedTokens(tokens);
        if (transposed.length < tp * cols) {
            transposed = new float[tp * cols];
        }
        float[] xT = transposed;
        // On all threads: alone, the transposes of a 512-token block took about 8 ms, 0.9% of its prefill.
        pool.forEachChunk(PackedMatmul.groups(tp), 1, (worker, g0, g1) ->
                PackedMatmul.transpose(x, tokens, cols, xT, tp, g0, g1));
        int panels = (rows + PackedMatmul.PANEL - 1) / PackedMatmul.PANEL;
        int chunk = Math.max(MIN_CHUNK_BLOCKS, panels / (PACKED_CHUNKS_PER_THREAD * pool.threads()));
        if (tp >= BroadcastMatmul.MIN_TOKENS) {
            pool.forEachChunk(panels, chunk, (worker, p0, p1) ->
                    BroadcastMatmul.rows(w.dtype(), w.data(), rows, cols, xT, tokens, tp, out, PackedMatmul.PANEL * p0,
                            Math.min(rows, PackedMatmul.PANEL * p1), tile(worker, BroadcastMatmul.scratchSize(tp))));
            return;
        }
        pool.forEachChunk(panels, chunk, (worker, p0, p1) ->
                PackedMatmul.rows(w.dtype(), w.data(), rows, cols, xT, tokens, tp, out, PackedMatmul.PANEL * p0,
                        Math.min(rows, PackedMatmul.PANEL * p1), tile(worker, PackedMatmul.scratchSize(cols))));
    }

    /**
     * The activations with each token's columns reordered as [x0, x2, x4, .., x1, x3, x5, ..]
     * over the first 2 * (cols / 2) columns, then x[cols - 1] if cols is odd: the order in which
     * {@link Bf16Dot} and {@link TileDot#fillF16} present the weights.
     */
    float[] pairLayout(float[] x, int tokens, int cols) {
        int n = tokens * cols;
        if (permuted.length < n) {
            permuted = new float[n];
        }
        float[] xp = permuted;
        int pairs = cols / 2;
        for (int t = 0; t < tokens; t++) {
            int b = t * cols;
            for (int j = 0; j < pairs; j++) {
                xp[b + j] = x[b + 2 * j];
                xp[b + pairs + j] = x[b + 2 * j + 1];
            }
            if (cols % 2 != 0) {
                xp[b + cols - 1] = x[b + cols - 1];
            }
        }
        return xp;
    }

    private void rowRange(Matrix w, float[] xs, int tokens, float[] out, int worker, int r0, int r1) {
        int tokenTile = Math.max(2, TOKEN_TILE_BYTES / (4 * w.cols()) & ~1);
        for (int t0 = 0; t0 < tokens; t0 += tokenTile) {
            int t1 = Math.min(tokens, t0 + tokenTile);
            if (w.dtype() == DType.BF16) {
                bf16Rows(w, xs, t0, t1, out, r0, r1);
            } else {
                tileRows(w, xs, t0, t1, out, r0, r1, worker);
            }
        }
    }

    private static void bf16Rows(Matrix w, float[] xp, int t0, int t1, float[] out, int r0, int r1) {
        MemorySegment data = w.data();
        int rows = w.rows();
        int cols = w.cols();
        int vectorPairs = Bf16Dot.vectorPairs(cols);
        int r = r0;
        for (; r + 4 <= r1; r += 4) {
            if (t1 - t0 == 1) {
                Bf16Dot.rows4x1(data, cols, r, xp, t0, out, rows, 0, vectorPairs, false);
                continue;
            }
            int j0 = 0;
            do {
                int j1 = Math.min(vectorPairs, j0 + PAIR_TILE);
                boolean add = j0 > 0;
                int t = t0;
                for (; t + 2 <= t1; t += 2) {
                    Bf16Dot.rows4x2(data, cols, r, xp, t, out, rows, j0, j1, add);
                }
                if (t < t1) {
                    Bf16Dot.rows4x1(data, cols, r, xp, t, out, rows, j0, j1, add);
                }
                j0 = j1;
            } while (j0 < vectorPairs);
        }
        for (; r < r1; r++) {
            for (int t = t0; t < t1; t++) {
                Bf16Dot.rows1x1(data, cols, r, xp, t, out, rows, 0, vectorPairs, false);
            }
        }
        Bf16Dot.tail(data, cols, r0, r1, xp, t0, t1, out, rows);
    }

    private void tileRows(Matrix w, float[] xs, int t0, int t1, float[] out, int r0, int r1, int worker) {
        MemorySegment data = w.data();
        int rows = w.rows();
        int cols = w.cols();
        DType type = w.dtype();
        boolean f32 = type == DType.F32;
        float[] tile = tile(worker, 4 * cols);
        for (int r = r0; r < r1; r += 4) {
            int n = Math.min(4, r1 - r);
            if (f32 && n == 4 && t1 - t0 == 1) {
                TileDot.f32Rows4x1(data, cols, r, xs, t0, out, rows);
                continue;
            }
            if (f32) {
                TileDot.fillF32(data, cols, r, n, tile);
            } else {
                TileDot.fillF16(data, cols, r, n, tile);
            }
            int t = t0;
            if (n == 4) {
                for (; t + 2 <= t1; t += 2) {
                    TileDot.rows4x2(tile, cols, xs, t, out, rows, r);
                }
            }
            for (; t < t1; t++) {
                for (int k = 0; k < n; k++) {
                    TileDot.rows1x1(tile, k, cols, xs, t, out, rows, r + k);
                }
            }
        }
    }

    /** Worker-private scratch; each worker index is used by one thread at a time. */
    private float[] tile(int worker, int size) {
        if (tiles[worker].length < size) {
            tiles[worker] = new float[size];
        }
        return tiles[worker];
    }
}
