package qwen.service.backend.cpu;

import java.util.List;
import qwen.service.backend.SequenceChunk;
import qwen.service.model.QwenConfig;

/**
 * The cos/sin rows of every chunk in a step, computed once and shared by all blocks. A chunk that
 * starts a sequence fixes its dynamic-NTK alpha from the prefill length (SPEC 3.5); later chunks
 * reuse the alpha the sequence's cached keys were rotated with.
 */
public final class RotaryTables {

    private final float[][] cos;
    private final float[][] sin;

    private RotaryTables(float[][] cos, float[][] sin) {
        this.cos = cos;
        this.sin = sin;
    }

    public static RotaryTables of(List<SequenceChunk> chunks, QwenConfig cfg) {
        float[][] cos = new float[chunks.size()][];
        float[][] sin = new float[chunks.size()][];
        int half = cfg.headDim() / 2;
        for (int c = 0; c < chunks.size(); c++) {
            SequenceChunk chunk = chunks.get(c);
            if (chunk.startPos() == 0) {
                chunk.kv().ntkAlpha(cfg.useDynamicNtk()
                        ? RopeTable.ntkAlpha(Math.max(chunk.prefillLength(), chunk.tokens()), cfg.seqLength())
                        : 1.0);
            }
            double base = RopeTable.ntkBase(cfg.ropeBase(), chunk.kv().ntkAlpha(), cfg.headDim());
            cos[c] = new float[chunk.tokens() * half];
            sin[c] = new float[chunk.tokens() * half];
            RopeTable.fill(base, cfg.headDim(), chunk.startPos(), chunk.tokens(), cos[c], sin[c]);
        }
        return new RotaryTables(cos, sin);
    }

    public float[] cos(int chunk) {
        return cos[chunk];
    }

    public float[] sin(int chunk) {
        return sin[chunk];
    }
}
