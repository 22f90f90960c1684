package qwen.gateway.scheduler;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import qwen.gateway.shard.SequenceWork;

/**
 * Forms one step's batch within a token budget: every decoding sequence's next token first
 * (rotating which go first when they alone exceed the budget), then prefill chunks of the prompts
 * still being read, in arrival order. A chunk samples only when it reaches the end of its
 * sequence's ids. Loop thread only.
 */
final class BatchFormer {

    private final int maxStepTokens;
    private int decodeRotation;

    BatchFormer(int maxStepTokens) {
        this.maxStepTokens = maxStepTokens;
    }

    /**
     * @param running the running sequences, in arrival order
     * @param members filled with the sequence of each entry of the returned batch
     */
    List<SequenceWork> form(List<ScheduledSequence> running, List<ScheduledSequence> members) {
        int budget = maxStepTokens;
        List<SequenceWork> batch = new ArrayList<>();
        List<ScheduledSequence> decoding = new ArrayList<>();
        for (ScheduledSequence sequence : running) {
            if (sequence.pending() == 1) {
                decoding.add(sequence);
            }
        }
        if (decoding.size() > budget) {
            Collections.rotate(decoding, -(decodeRotation++ % decoding.size()));
        }
        for (ScheduledSequence sequence : decoding) {
            if (budget == 0) {
                break;
            }
            batch.add(work(sequence, 1));
            members.add(sequence);
            budget--;
        }
        for (ScheduledSequence sequence : running) {
            if (budget == 0) {
                break;
            }
            if (sequence.pending() > 1) {
                int chunk = Math.min(sequence.pending(), budget);
                batch.add(work(sequence, chunk));
                members.add(sequence);
                budget -= chunk;
            }
        }
        return batch;
    }

    private static SequenceWork work(ScheduledSequence sequence, int tokens) {
        int start = sequence.held();
        boolean last = start + tokens == sequence.length();
        int prefillTokens = start == 0 && !last ? sequence.length() : 0;     // NTK alpha needs the whole prompt
        return new SequenceWork(sequence.sequenceId(), start, sequence.ids(start, start + tokens), last,
                sequence.sampling(), prefillTokens);
    }
}
