package qwen.gateway.shard;

import java.util.Arrays;
import qwen.proto.shard.v1.SamplingParams;

/**
 * One sequence's part of a pipeline step.
 *
 * @param sequenceId the sequence's KV identity on the shards
 * @param startPosition absolute position of {@code tokenIds[0]}; at most the positions the shards hold
 * @param tokenIds the new tokens, at least one
 * @param sample whether the last shard samples the token after the last of {@code tokenIds}
 * @param sampling how to sample; required when {@code sample}
 * @param prefillTokens the whole prompt's length when this is the first of several prefill chunks
 *     (it fixes the sequence's dynamic-NTK rotary base); 0 otherwise
 */
public record SequenceWork(String sequenceId, int startPosition, int[] tokenIds, boolean sample,
                           SamplingParams sampling, int prefillTokens) {


    public SequenceWork {
        if (tokenIds.length == 0) {
            throw new IllegalArgumentException("sequence " + sequenceId + ": a step needs at least one token");
        }
        if (sample && sampling == null) {
            throw new IllegalArgumentException("sequence " + sequenceId + ": sample needs sampling parameters");
        }
    }

    @Override
    public String toString() {
        return "SequenceWork[" + sequenceId + " @" + startPosition + " +" + tokenIds.length
                + (sample ? " sample" : "") + " " + Arrays.toString(Arrays.copyOf(tokenIds, Math.min(8, tokenIds.length)))
                + "]";
    }
}
