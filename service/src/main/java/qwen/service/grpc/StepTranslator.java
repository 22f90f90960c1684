package qwen.service.grpc;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import qwen.proto.shard.v1.HiddenStates;
import qwen.proto.shard.v1.SampledToken;
import qwen.proto.shard.v1.SequenceError;
import qwen.proto.shard.v1.SequenceErrorCode;
import qwen.proto.shard.v1.SequenceResult;
import qwen.proto.shard.v1.SequenceStep;
import qwen.proto.shard.v1.StepRequest;
import qwen.proto.shard.v1.StepResponse;
import qwen.proto.shard.v1.TokenLogprob;
import qwen.service.engine.ShardEngine;
import qwen.service.engine.StepInput;
import qwen.service.engine.StepOutput;
import qwen.service.model.LayerRange;
import qwen.service.sampling.Sample;
import qwen.service.sampling.SamplingParams;

/**
 * Runs one StepRequest as one {@link ShardEngine#step}: checks the request as shard.proto
 * specifies (a malformed one is a gateway bug and ends the stream with INVALID_ARGUMENT), decodes
 * hidden rows, and maps each engine output to a SequenceResult. Runs on the model thread.
 */
final class StepTranslator {

    private static final int MAX_SEQUENCE_ID_BYTES = 128;

    private final ShardEngine engine;
    private final LayerRange range;
    private final int hiddenSize;
    private final int maxStepTokens;

    StepTranslator(ShardEngine engine, int maxStepTokens) {
        this.engine = engine;
        this.range = engine.backend().weights().range();
        this.hiddenSize = engine.backend().weights().config().hiddenSize();
        this.maxStepTokens = maxStepTokens;
    }

    /**
     * Runs {@code request}; {@code arrivedNanos} is when it reached the shard (for queue_ns).
     *
     * @throws StatusRuntimeException INVALID_ARGUMENT for a malformed request, INTERNAL when the backend fails
     */
    StepResponse run(StepRequest request, long arrivedNanos) {
        long start = System.nanoTime();
        checkShape(request);
        int n = request.getSequencesCount();
        SequenceResult[] results = new SequenceResult[n];
        List<StepInput> inputs = new ArrayList<>(n);
        List<Integer> inputSlots = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            SequenceStep seq = request.getSequences(i);
            if (seq.getStartPosition() < 0) {   // a uint32 past 2^31: more than any shard holds
                results[i] = failure(seq.getSequenceId(), SequenceErrorCode.SEQUENCE_ERROR_CODE_FAILED_PRECONDITION,
                        "sequence " + seq.getSequenceId() + " starts at position " + Integer.toUnsignedString(seq.getStartPosition())
                                + " but this shard holds " + engine.heldPositions(seq.getSequenceId()) + " positions of it",
                        engine.heldPositions(seq.getSequenceId()));
                continue;
            }
            SamplingParams sampling = null;
            if (range.head() && seq.getSample()) {
                try {
                    sampling = samplingParams(seq.getSampling());
                } catch (IllegalArgumentException e) {
                    results[i] = failure(seq.getSequenceId(), SequenceErrorCode.SEQUENCE_ERROR_CODE_INVALID_ARGUMENT,
                            "sequence " + seq.getSequenceId() + ": " + e.getMessage(), engine.heldPositions(seq.getSequenceId()));
                    continue;
                }
            }
            float[] hidden = range.embedding() ? null : HiddenCodec.decode(seq.getHidden());
            inputs.add(new StepInput(seq.getSequenceId(), seq.getStartPosition(), toArray(seq.getTokenIdsList()), hidden, seq.getPrefillTokens(),
                    seq.getSample(), sampling));
            inputSlots.add(i);
        }
        List<StepOutput> outputs;
        try {
            outputs = inputs.isEmpty() ? List.of() : engine.step(inputs);
        } catch (RuntimeException e) {
            throw Status.INTERNAL.withDescription("step " + Long.toUnsignedString(request.getStepId())
                    + ": the compute backend failed; the KV of this step's sequences is undefined, re-prefill them: " + e)
                    .withCause(e).asRuntimeException();
        }
        long forward = System.nanoTime() - start;
        for (int k = 0; k < outputs.size(); k++) {
            results[inputSlots.get(k)] = result(outputs.get(k), request.getOutputEncoding());
        }
        return StepResponse.newBuilder()
                .setStepId(request.getStepId())
                .addAllResults(List.of(results))
                .setForwardNs(forward)
                .setQueueNs(Math.max(0, start - arrivedNanos))
                .setKvBytesInUse(engine.kvPool().bytesInUse())
                .build();
    }

    /** The stream-ending checks of shard.proto's Step documentation. */
    private void checkShape(StepRequest request) {
        String step = "step " + Long.toUnsignedString(request.getStepId());
        long tokens = 0;
        Set<String> ids = new HashSet<>();
        for (SequenceStep seq : request.getSequencesList()) {
            String id = seq.getSequenceId();
            int idBytes = id.getBytes(StandardCharsets.UTF_8).length;
            if (idBytes < 1 || idBytes > MAX_SEQUENCE_ID_BYTES) {
                throw invalid(step + ": sequence_id '" + id + "' is " + idBytes + " bytes; it must be 1 to " + MAX_SEQUENCE_ID_BYTES);
            }
            if (!ids.add(id)) {
                throw invalid(step + ": sequence " + id + " appears twice; each sequence may appear once per step");
            }
            int n = seq.getTokenIdsCount();
            if (n == 0) {
                throw invalid(step + ", sequence " + id + ": token_ids is empty; every entry needs at least one token");
            }
            if (seq.getSample() && !seq.hasSampling()) {
                throw invalid(step + ", sequence " + id + ": sample is set but sampling is missing");
            }
            if (!range.embedding()) {
                checkHidden(step, id, n, seq);
            }
            tokens += n;
        }
        if (tokens > maxStepTokens) {
            throw invalid(step + ": " + tokens + " tokens in one step, over this shard's max_step_tokens " + maxStepTokens
                    + "; split the prompt into chunks");
        }
    }

    private void checkHidden(String step, String id, int tokens, SequenceStep seq) {
        if (!seq.hasHidden()) {
            throw invalid(step + ", sequence " + id + ": hidden rows are missing; this shard (layers " + range
                    + ") has no embedding and needs the previous shard's output");
        }
        HiddenStates hidden = seq.getHidden();
        int width = HiddenCodec.width(hidden.getEncoding());
        if (width == 0) {
            throw invalid(step + ", sequence " + id + ": hidden.encoding " + hidden.getEncoding() + " is not F32 or BF16");
        }
        long expected = (long) tokens * hiddenSize * width;
        if (hidden.getData().size() != expected) {
            throw invalid(step + ", sequence " + id + ": hidden.data is " + hidden.getData().size() + " bytes; expected "
                    + expected + " (" + tokens + " tokens x hidden_size " + hiddenSize + " x " + width + " bytes "
                    + hidden.getEncoding() + ")");
        }
    }

    /** The engine's sampling settings; throws IllegalArgumentException for values out of range. */
    static SamplingParams samplingParams(qwen.proto.shard.v1.SamplingParams p) {
        if (p.getGreedy()) {   // temperature, top_k, top_p and seed are ignored, so their zero defaults are fine
            return new SamplingParams(true, 1f, 0, 1f, p.getRepetitionPenalty(), 0, p.getTopLogprobs());
        }
        if (!(p.getTemperature() > 0)) {
            throw new IllegalArgumentException("temperature must be > 0 when greedy is false, got " + p.getTemperature());
        }
        return new SamplingParams(false, p.getTemperature(), p.getTopK(), p.getTopP(), p.getRepetitionPenalty(), p.getSeed(),
                p.getTopLogprobs());
    }

    private SequenceResult result(StepOutput out, qwen.proto.shard.v1.HiddenEncoding encoding) {
        if (out.failure() != null) {
            StepOutput.Failure f = out.failure();
            return failure(out.sequenceId(), code(f.code()), f.message(), f.heldPositions());
        }
        SequenceResult.Builder result = SequenceResult.newBuilder()
                .setSequenceId(out.sequenceId())
                .setHeldPositions(engine.heldPositions(out.sequenceId()));
        if (out.hidden() != null) {
            result.setHidden(HiddenCodec.encode(out.hidden(), encoding));
        } else if (out.sample() != null) {
            result.setSampled(sampled(out.sample()));
        }
        return result.build();
    }

    private static SampledToken sampled(Sample sample) {
        SampledToken.Builder token = SampledToken.newBuilder().setTokenId(sample.id()).setLogprob(sample.logprob());
        for (qwen.service.sampling.TokenLogprob t : sample.top()) {
            token.addTopLogprobs(TokenLogprob.newBuilder().setTokenId(t.id()).setLogprob(t.logprob()));
        }
        return token.build();
    }

    private static SequenceResult failure(String id, SequenceErrorCode code, String message, int held) {
        return SequenceResult.newBuilder()
                .setSequenceId(id)
                .setHeldPositions(held)
                .setError(SequenceError.newBuilder().setCode(code).setMessage(message))
                .build();
    }

    private static SequenceErrorCode code(StepOutput.Code code) {
        return switch (code) {
            case FAILED_PRECONDITION -> SequenceErrorCode.SEQUENCE_ERROR_CODE_FAILED_PRECONDITION;
            case RESOURCE_EXHAUSTED -> SequenceErrorCode.SEQUENCE_ERROR_CODE_RESOURCE_EXHAUSTED;
            case INVALID_ARGUMENT -> SequenceErrorCode.SEQUENCE_ERROR_CODE_INVALID_ARGUMENT;
        };
    }

    private static StatusRuntimeException invalid(String message) {
        return Status.INVALID_ARGUMENT.withDescription(message).asRuntimeException();
    }

    private static int[] toArray(List<Integer> ids) {
        int[] out = new int[ids.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = ids.get(i);
        }
        return out;
    }
}
