package qwen.gateway.shard;

import io.grpc.Status;
import java.util.ArrayList;
import java.util.List;
import qwen.proto.shard.v1.HiddenStates;
import qwen.proto.shard.v1.SequenceResult;
import qwen.proto.shard.v1.StepResponse;

/** Reads one shard's answer to one step request against the contract. */
final class StepAnswers {

    private StepAnswers() {
    }

    /** Takes {@code shard}'s answer for {@code live}: records outcomes and hidden rows; returns who goes on. */
    static List<Integer> absorb(Shard shard, boolean head, StepResponse response, List<SequenceWork> batch,
                                List<Integer> live, SequenceOutcome[] outcomes, HiddenStates[] hidden) {
        if (response.getResultsCount() != live.size()) {
            throw broken(shard, "answered " + response.getResultsCount() + " results for " + live.size()
                    + " sequences");
        }
        List<Integer> next = new ArrayList<>();
        for (int k = 0; k < live.size(); k++) {
            int i = live.get(k);
            SequenceWork work = batch.get(i);
            SequenceResult result = response.getResults(k);
            if (!result.getSequenceId().equals(work.sequenceId())) {
                throw broken(shard, "answered sequence " + result.getSequenceId() + " in the place of "
                        + work.sequenceId());
            }
            switch (result.getOutcomeCase()) {
                case ERROR -> outcomes[i] = new SequenceOutcome.Failed(work.sequenceId(),
                        result.getError().getCode(), result.getError().getMessage(),
                        result.getHeldPositions(), shard.address());
                case HIDDEN -> {
                    if (head) {
                        throw broken(shard, "returned hidden rows from the last shard");
                    }
                    hidden[i] = result.getHidden();
                    next.add(i);
                }
                case SAMPLED -> {
                    if (!head || !work.sample()) {
                        throw broken(shard, "sampled a token for " + work.sequenceId() + " unasked");
                    }
                    outcomes[i] = new SequenceOutcome.Sampled(work.sequenceId(), result.getHeldPositions(),
                            result.getSampled());
                }
                case OUTCOME_NOT_SET -> {
                    if (!head || work.sample()) {
                        throw broken(shard, "returned no outcome for " + work.sequenceId());
                    }
                    outcomes[i] = new SequenceOutcome.Stored(work.sequenceId(), result.getHeldPositions());
                }
            }
        }
        return next;
    }

    /** A contract breach: the shard's stream is reset and the step fails with INTERNAL. */
    static ShardException broken(Shard shard, String what) {
        shard.resetStream(what);
        return new ShardException(shard.address(), Status.Code.INTERNAL, what, null);
    }
}
