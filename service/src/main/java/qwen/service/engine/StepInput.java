package qwen.service.engine;

import qwen.service.sampling.SamplingParams;

/**
 * One sequence's entry in a step, as the shard receives it.
 *
 * @param sequenceId the gateway's id for the sequence
 * @param startPos absolute position of the first token; at most the positions already held
 *     (lower recomputes from there)
 * @param tokenIds the entry's tokens (every shard gets them; the last uses them for the penalty)
 * @param hidden previous shard's rows (tokens x hidden_size), null on the first shard
 * @param prefillLength whole prompt length when startPos is 0 and the prompt comes in chunks; 0
 *     means "this entry is the whole prompt"
 * @param sample whether the last shard samples after this entry (false for non-final prefill chunks)
 * @param sampling how to sample; used by the last shard only, may be null elsewhere
 */
public record StepInput(
        String sequenceId,
        int startPos,
        int[] tokenIds,
        float[] hidden,
        int prefillLength,
        boolean sample,
        SamplingParams sampling) {
}
