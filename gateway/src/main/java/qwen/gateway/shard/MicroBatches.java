package qwen.gateway.shard;

import java.util.ArrayList;
import java.util.List;

/** How a step's batch is cut into micro-batches for the pipelined shards. */
final class MicroBatches {

    private MicroBatches() {
    }

    /**
     * Splits the batch's indices into {@code parts} runs of consecutive entries with about equal
     * token counts (fewer when there are fewer entries).
     */
    static List<List<Integer>> split(List<SequenceWork> batch, int parts) {
        List<List<Integer>> groups = new ArrayList<>();
        if (parts <= 1 || batch.size() <= 1) {
            List<Integer> all = new ArrayList<>();
            for (int i = 0; i < batch.size(); i++) {
                all.add(i);
            }
            groups.add(all);
            return groups;
        }
        long total = batch.stream().mapToLong(w -> w.tokenIds().length).sum();
        long done = 0;
        List<Integer> current = new ArrayList<>();
        for (int i = 0; i < batch.size(); i++) {
            current.add(i);
            done += batch.get(i).tokenIds().length;
            int left = batch.size() - i - 1;
            int groupsLeft = parts - groups.size() - 1;
            boolean reached = done * parts >= total * (groups.size() + 1);
            if (groupsLeft > 0 && left > 0 && (reached || left == groupsLeft)) {
                groups.add(current);
                current = new ArrayList<>();
            }
        }
        groups.add(current);
        return groups;
    }

}
