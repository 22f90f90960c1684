package qwen.service.backend.cpu;

import java.util.ArrayList;
import java.util.List;
import qwen.service.backend.ChunkOutput;
import qwen.service.backend.ComputeBackend;
import qwen.service.backend.SequenceChunk;
import qwen.service.kv.LayerKv;
import qwen.service.kv.SequenceKv;
import qwen.service.model.LayerWeights;
import qwen.service.model.QwenConfig;
import qwen.service.model.ShardWeights;

/**
 * The Qwen-1 forward pass (SPEC section 3) on the CPU, for a batch of sequence chunks at once:
 * every matrix is read once per step for all rows of all chunks, and attention runs per
 * sequence against its own cache. The same code runs with {@link ScalarKernels} (the reference)
 * or {@link VectorKernels} (the fast path), which is how tests hold the two to each other.
 */
public final class CpuBackend implements ComputeBackend {

    private final ShardWeights weights;
    private final QwenConfig cfg;
    private final Kernels k;
    private final String device;
    private final Workspace ws = new Workspace();

    /**
     * @param weights the shard's weights
     * @param kernels the kernel set; closed with this backend when it is AutoCloseable
     * @param device description for Info and logs
     */
    public CpuBackend(ShardWeights weights, Kernels kernels, String device) {
        this.weights = weights;
        this.cfg = weights.config();
        this.k = kernels;
        this.device = device;
    }

    @Override
    public synchronized List<ChunkOutput> forward(List<SequenceChunk> chunks) {
        int rows = 0;
        for (SequenceChunk c : chunks) {
            rows += c.tokens();
        }
        ws.ensure(cfg, rows);
        float[] x = ws.x;
        int d = cfg.hiddenSize();

        // Input: token embeddings on the first shard, the previous shard's hidden rows otherwise.
        int row = 0;
        for (SequenceChunk c : chunks) {
            for (int t = 0; t < c.tokens(); t++, row++) {
                if (weights.range().embedding()) {
                    k.embed(weights.wte(), c.tokenIds()[t], x, row * d);           // x0 = wte[id]
                } else {
                    System.arraycopy(c.hiddenIn(), t * d, x, row * d, d);
                }
            }
        }
        if (weights.range().embedding()) {
            // A read of a mapped row maps its whole page-cache folio (up to 2 MB): kept, the rows
            // of a server's traffic would make the whole table resident (622 MB at 1.8B shapes)
            // for a few KB a step. Releasing them costs about 50 us a token.
            weights.wte().releasePages();
        }
        RotaryTables rotary = RotaryTables.of(chunks, cfg);

        for (int l = 0; l < weights.layers().size(); l++) {
            block(weights.layers().get(l), l, chunks, rows, rotary);
        }
        return outputs(chunks, rows);
    }

    /** One transformer block over all rows (SPEC 3.2), in the model's order. */
    private void block(LayerWeights w, int l, List<SequenceChunk> chunks, int rows, RotaryTables rotary) {
        int d = cfg.hiddenSize();
        int qkvDim = cfg.qkvDim();
        float[] x = ws.x;

        k.rmsnorm(x, rows, w.ln1(), cfg.rmsEps(), ws.h);                     // h = RMSNorm(x, ln_1)
        k.matmul(w.cAttn(), ws.h, rows, ws.qkv);                             // qkv = c_attn(h)
        k.addBias(ws.qkv, rows, w.cAttnBias());                              //       + bias

        int row = 0;
        for (int c = 0; c < chunks.size(); c++) {
            SequenceChunk chunk = chunks.get(c);
            int n = chunk.tokens();
            float[] cos = rotary.cos(c);
            float[] sin = rotary.sin(c);
            // RoPE on q (columns 0..d) and k (d..2d) of this chunk's rows; v is not rotated.
            k.rope(ws.qkv, n, qkvDim, row * qkvDim, cfg.numHeads(), cfg.headDim(), cos, sin);
            k.rope(ws.qkv, n, qkvDim, row * qkvDim + d, cfg.numHeads(), cfg.headDim(), cos, sin);
            LayerKv kv = chunk.kv().layer(l);
            for (int t = 0; t < n; t++) {
                int r = row + t;
                kv.put(chunk.startPos() + t, ws.qkv, r * qkvDim + d, ws.qkv, r * qkvDim + 2 * d);  // cache k, v
                copyQuery(r, chunk.startPos() + t);                          // q, logn-scaled past seq_length
            }
            k.attention(ws.q, ws.attn, row, n, chunk.startPos(), kv, cfg.numHeads(), cfg.headDim());
            row += n;
        }

        k.matmul(w.attnCProj(), ws.attn, rows, ws.h);                        // o = attn.c_proj(attn)
        k.add(x, ws.h, rows * d);                                            // x = x + o

        k.rmsnorm(x, rows, w.ln2(), cfg.rmsEps(), ws.h);                     // h2 = RMSNorm(x, ln_2)
        k.matmul(w.w1(), ws.h, rows, ws.up);                                 // a1 = w1(h2)
        k.matmul(w.w2(), ws.h, rows, ws.gate);                               // a2 = w2(h2)
        k.siluMul(ws.up, ws.gate, rows * cfg.ffnDim());                      // a1 * silu(a2): SiLU on w2
        k.matmul(w.mlpCProj(), ws.up, rows, ws.h);                           // m = mlp.c_proj(...)
        k.add(x, ws.h, rows * d);                                            // x = x + m
    }

    /** Copies query row r out of qkv, times the logn factor of its absolute position (SPEC 3.5). */
    private void copyQuery(int r, int pos) {
        int d = cfg.hiddenSize();
        System.arraycopy(ws.qkv, r * cfg.qkvDim(), ws.q, r * d, d);
        float logn = cfg.useLognAttn() ? (float) RopeTable.lognFactor(pos, cfg.seqLength()) : 1f;
        if (logn != 1f) {
            for (int i = r * d; i < (r + 1) * d; i++) {
                ws.q[i] *= logn;
            }
        }
    }

    /** Hidden rows for the next shard, or ln_f + lm_head on the last row of chunks that want logits. */
    private List<ChunkOutput> outputs(List<SequenceChunk> chunks, int rows) {
        int d = cfg.hiddenSize();
        List<ChunkOutput> out = new ArrayList<>(chunks.size());
        if (!weights.range().head()) {
            int row = 0;
            for (SequenceChunk c : chunks) {
                float[] hidden = new float[c.tokens() * d];
                System.arraycopy(ws.x, row * d, hidden, 0, hidden.length);
                out.add(new ChunkOutput(hidden, null));
                row += c.tokens();
            }
            return out;
        }
        // Gather the last row of each chunk that wants logits, then one batched head matmul.
        int wanted = 0;
        int row = 0;
        for (SequenceChunk c : chunks) {
            row += c.tokens();
            if (c.wantLogits()) {
                System.arraycopy(ws.x, (row - 1) * d, ws.h, wanted * d, d);
                wanted++;
            }
        }
        int vocab = cfg.vocabSize();
        float[] logits = new float[Math.max(wanted, 1) * vocab];
        if (wanted > 0) {
            k.rmsnorm(ws.h, wanted, weights.lnF(), cfg.rmsEps(), ws.h);    // x = RMSNorm(x, ln_f)
            k.matmul(weights.lmHead(), ws.h, wanted, logits);               // logits = lm_head(x)
        }
        int i = 0;
        for (SequenceChunk c : chunks) {
            if (c.wantLogits()) {
                float[] one = new float[vocab];
                System.arraycopy(logits, i++ * vocab, one, 0, vocab);
                out.add(new ChunkOutput(null, one));
            } else {
                out.add(new ChunkOutput(null, null));
            }
        }
        return out;
    }

    @Override
    public ShardWeights weights() {
        return weights;
    }

    @Override
    public String device() {
        return device;
    }

    /** Stops the kernels' threads and unmaps the weights. */
    @Override
    public void close() {
        try (weights) {
            if (k instanceof AutoCloseable closeable) {
                closeable.close();
            }
        } catch (Exception e) {
            throw new IllegalStateException("closing the CPU backend", e);
        }
    }

    /** Step buffers, grown to the largest step seen and reused, so decode allocates nothing big. */
    private static final class Workspace {
        float[] x = new float[0];      // [rows, d] residual stream
        float[] h = new float[0];      // [rows, d] normed input / projection output
        float[] qkv = new float[0];    // [rows, 3d]
        float[] q = new float[0];      // [rows, d] queries for attention
        float[] attn = new float[0];   // [rows, d] attention output, heads concatenated
        float[] up = new float[0];     // [rows, f] w1 output, then the gated product
        float[] gate = new float[0];   // [rows, f] w2 output

        void ensure(QwenConfig cfg, int rows) {
            int d = cfg.hiddenSize();
            if (x.length >= rows * d) {
                return;
            }
            x = new float[rows * d];
            h = new float[rows * d];
            qkv = new float[rows * cfg.qkvDim()];
            q = new float[rows * d];
            attn = new float[rows * d];
            up = new float[rows * cfg.ffnDim()];
            gate = new float[rows * cfg.ffnDim()];
        }
    }
}
