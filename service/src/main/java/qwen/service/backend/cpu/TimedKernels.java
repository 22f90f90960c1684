package qwen.service.backend.cpu;

import java.util.LinkedHashMap;
import java.util.Map;
import qwen.service.kv.LayerKv;
import qwen.service.model.Matrix;

/**
 * A {@link Kernels} decorator that adds up the wall time of each operation (matmul per weight
 * name pattern, attention, norms, element-wise), for the benchmark's per-operation breakdown.
 * Not thread-safe, like the kernels it wraps: one forward pass at a time. Timing costs two
 * {@link System#nanoTime} calls per kernel, well under a percent of a decode step.
 */
public final class TimedKernels implements Kernels, AutoCloseable {

    /** Time and work of one operation since the last {@link #reset}. */
    public record Op(String name, long calls, long nanos, double flops) {
    }

    private final Kernels inner;
    private final Map<String, long[]> nanos = new LinkedHashMap<>();
    private final Map<String, double[]> flops = new LinkedHashMap<>();

    public TimedKernels(Kernels inner) {
        this.inner = inner;
    }

    /** The operations timed since the last reset, in first-call order. */
    public Map<String, Op> ops() {
        Map<String, Op> out = new LinkedHashMap<>();
        nanos.forEach((k, v) -> out.put(k, new Op(k, v[1], v[0], flops.getOrDefault(k, new double[1])[0])));
        return out;
    }

    public void reset() {
        nanos.clear();
        flops.clear();
    }

    private void record(String op, long t0, double work) {
        long[] v = nanos.computeIfAbsent(op, k -> new long[2]);
        v[0] += System.nanoTime() - t0;
        v[1]++;
        flops.computeIfAbsent(op, k -> new double[1])[0] += work;
    }

    /** "h.3.mlp.w1.weight" and "transformer.h.3.mlp.w1" become "matmul mlp.w1". */
    private static String matmulName(Matrix w) {
        String n = w.name().replace(".weight", "");
        int layer = n.indexOf(".h.");
        if (layer >= 0) {
            int dot = n.indexOf('.', layer + 3);
            n = dot >= 0 ? n.substring(dot + 1) : n;
        } else if (n.startsWith("h.")) {
            int dot = n.indexOf('.', 2);
            n = dot >= 0 ? n.substring(dot + 1) : n;
        }
        return "matmul " + n;
    }

    @Override
    public void matmul(Matrix w, float[] x, int tokens, float[] out) {
        long t0 = System.nanoTime();
        inner.matmul(w, x, tokens, out);
        record(matmulName(w), t0, 2.0 * tokens * w.rows() * w.cols());
    }

    @Override
    public void rmsnorm(float[] x, int tokens, float[] weight, float eps, float[] out) {
        long t0 = System.nanoTime();
        inner.rmsnorm(x, tokens, weight, eps, out);
        record("rmsnorm", t0, 0);
    }

    @Override
    public void embed(Matrix wte, int id, float[] out, int offset) {
        long t0 = System.nanoTime();
        inner.embed(wte, id, out, offset);
        record("embed", t0, 0);
    }

    @Override
    public void addBias(float[] x, int tokens, float[] bias) {
        long t0 = System.nanoTime();
        inner.addBias(x, tokens, bias);
        record("addBias", t0, 0);
    }

    @Override
    public void rope(float[] x, int tokens, int rowStride, int colOffset, int numHeads, int headDim,
                     float[] cos, float[] sin) {
        long t0 = System.nanoTime();
        inner.rope(x, tokens, rowStride, colOffset, numHeads, headDim, cos, sin);
        record("rope", t0, 0);
    }

    @Override
    public void attention(float[] q, float[] out, int rowOffset, int tokens, int startPos, LayerKv kv,
                          int numHeads, int headDim) {
        long t0 = System.nanoTime();
        inner.attention(q, out, rowOffset, tokens, startPos, kv, numHeads, headDim);
        // q.k and p.v: 2 FLOPs per element each, over the causal triangle of this chunk.
        double pairs = (double) tokens * startPos + (double) tokens * (tokens + 1) / 2;
        record("attention", t0, 4.0 * pairs * numHeads * headDim);
    }

    @Override
    public void siluMul(float[] up, float[] gate, int n) {
        long t0 = System.nanoTime();
        inner.siluMul(up, gate, n);
        record("siluMul", t0, 0);
    }

    @Override
    public void add(float[] x, float[] y, int n) {
        long t0 = System.nanoTime();
        inner.add(x, y, n);
        record("add", t0, 0);
    }

    @Override
    public void close() throws Exception {
        if (inner instanceof AutoCloseable c) {
            c.close();
        }
    }
}
