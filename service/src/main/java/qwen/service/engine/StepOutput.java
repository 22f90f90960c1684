package qwen.service.engine;

import qwen.service.sampling.Sample;

/**
 * What a step produced for one sequence: exactly one of a failure, hidden rows (non-last shards)
 * or a sample (last shard, when asked). A last-shard entry with sample=false has none of them.
 *
 * @param sequenceId the gateway's id
 * @param failure why the entry was not computed; null on success
 * @param hidden rows for the next shard (tokens x hidden_size); null on the last shard
 * @param sample the chosen token and logprobs; null unless the last shard sampled
 */
public record StepOutput(String sequenceId, Failure failure, float[] hidden, Sample sample) {

    /** Why a sequence's entry was refused; the other entries of the step still ran. */
    public record Failure(Code code, String message, int heldPositions) {
    }

    /** Failure kinds, mapped one-to-one to gRPC status codes. */
    public enum Code {
        /** The shard lacks the KV positions the entry builds on: re-prefill from position 0. */
        FAILED_PRECONDITION,
        /** The KV budget cannot hold the entry now. */
        RESOURCE_EXHAUSTED,
        /** The entry itself is malformed (ids outside the vocabulary, wrong hidden size...). */
        INVALID_ARGUMENT
    }

    static StepOutput failed(String id, Code code, String message, int held) {
        return new StepOutput(id, new Failure(code, message, held), null, null);
    }
}
