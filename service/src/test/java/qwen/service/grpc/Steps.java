package qwen.service.grpc;

import java.util.List;
import qwen.proto.shard.v1.SamplingParams;
import qwen.proto.shard.v1.SequenceStep;
import qwen.proto.shard.v1.StepRequest;

/**
 * Request builders shared by the shard tests. A plain class on purpose: Quarkus loads each test
 * profile's classes in its own class loader, and a test class reaching into another test class
 * would mix them.
 */
final class Steps {

    /** ChatML-shaped ids: <|im_start|>user\nHello<|im_end|>\n. */
    static final int[] PROMPT = {151644, 872, 198, 9707, 151645, 198};

    /** Width of the TINY demo model's hidden rows. */
    static final int HIDDEN = 64;

    private Steps() {
    }

    static StepRequest request(long stepId, SequenceStep... sequences) {
        return StepRequest.newBuilder().setStepId(stepId).addAllSequences(List.of(sequences)).build();
    }

    /** An entry that asks the last shard for the arg-max token, with {@code topLogprobs} alternatives. */
    static SequenceStep greedy(String id, int start, int[] tokens, int topLogprobs) {
        SequenceStep.Builder b = SequenceStep.newBuilder().setSequenceId(id).setStartPosition(start).setSample(true)
                .setSampling(SamplingParams.newBuilder().setGreedy(true).setRepetitionPenalty(1).setTopLogprobs(topLogprobs));
        for (int t : tokens) {
            b.addTokenIds(t);
        }
        return b.build();
    }
}
