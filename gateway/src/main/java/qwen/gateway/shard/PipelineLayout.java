package qwen.gateway.shard;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.function.Function;
import java.util.stream.Collectors;
import qwen.proto.shard.v1.ShardInfo;

/**
 * Checks that shards form one pipeline: they agree on the model, their layer ranges are
 * contiguous and cover every layer exactly once, exactly one holds the embedding (and serves
 * layer 0) and exactly one holds the head (and serves the last layer).
 */
public final class PipelineLayout {

    /** A shard's address and what its Info said. */
    public record Member(String address, ShardInfo info) {
    }

    private PipelineLayout() {
    }

    /**
     * Orders the members by first layer and checks them.
     *
     * @return the members in layer order
     * @throws PipelineLayoutException naming every problem found, for example
     *     "layers 12-13 are served by no shard"
     */
    public static List<Member> order(List<Member> members) {
        if (members.isEmpty()) {
            throw new PipelineLayoutException("no shards are configured (qwen.gateway.shards)");
        }
        List<Member> ordered = new ArrayList<>(members);
        ordered.sort(Comparator.comparingInt((Member m) -> m.info().getFirstLayer())
                .thenComparingInt(m -> m.info().getEndLayer()));
        List<String> problems = new ArrayList<>(agreement(ordered));
        if (problems.isEmpty()) {
            problems.addAll(ranges(ordered));
            problems.addAll(ends(ordered, ShardInfo::getHasEmbedding, "the embedding", true));
            problems.addAll(ends(ordered, ShardInfo::getHasHead, "the head", false));
        }
        if (!problems.isEmpty()) {
            throw new PipelineLayoutException("the shards do not form one pipeline: " + String.join("; ", problems)
                    + " (" + describe(ordered) + ")");
        }
        return List.copyOf(ordered);
    }

    private static List<String> agreement(List<Member> members) {
        List<String> problems = new ArrayList<>();
        agree(members, "model_id", m -> m.info().getModelId(), problems);
        agree(members, "num_layers", m -> m.info().getNumLayers(), problems);
        agree(members, "hidden_size", m -> m.info().getHiddenSize(), problems);
        agree(members, "vocab_size", m -> m.info().getVocabSize(), problems);
        agree(members, "seq_length", m -> m.info().getSeqLength(), problems);
        for (Member m : members) {
            ShardInfo info = m.info();
            if (info.getFirstLayer() >= info.getEndLayer() || info.getEndLayer() > info.getNumLayers()) {
                problems.add(m.address() + " reports first_layer " + info.getFirstLayer() + ", end_layer "
                        + info.getEndLayer() + ", which is no range of a " + info.getNumLayers() + "-layer model");
            }
        }
        return problems;
    }

    private static void agree(List<Member> members, String field, Function<Member, Object> value,
                              List<String> problems) {
        Object first = value.apply(members.getFirst());
        boolean same = members.stream().allMatch(m -> value.apply(m).equals(first));
        if (!same) {
            problems.add("the shards disagree on " + field + ": " + members.stream()
                    .map(m -> m.address() + " has " + value.apply(m)).collect(Collectors.joining(", ")));
        }
    }

    private static List<String> ranges(List<Member> ordered) {
        List<String> problems = new ArrayList<>();
        int numLayers = ordered.getFirst().info().getNumLayers();
        int covered = 0; // layers [0, covered) are served
        Member widest = null; // the member that serves layer covered - 1
        for (Member m : ordered) {
            int first = m.info().getFirstLayer();
            int end = m.info().getEndLayer();
            if (first > covered) {
                problems.add(layers(covered, first) + " served by no shard");
            } else if (first < covered) {
                problems.add(layers(first, Math.min(end, covered)) + " served by both " + widest.address() + " and "
                        + m.address());
            }
            if (end > covered) {
                covered = end;
                widest = m;
            }
        }
        if (covered < numLayers) {
            problems.add(layers(covered, numLayers) + " served by no shard");
        }
        return problems;
    }

    private static List<String> ends(List<Member> ordered, Function<ShardInfo, Boolean> holds, String part,
                                     boolean first) {
        List<Member> holders = ordered.stream().filter(m -> holds.apply(m.info())).toList();
        if (holders.isEmpty()) {
            return List.of("no shard holds " + part);
        }
        if (holders.size() > 1) {
            return List.of(part + " is held by both " + holders.stream().map(Member::address)
                    .collect(Collectors.joining(" and ")));
        }
        ShardInfo info = holders.getFirst().info();
        int needed = first ? 0 : info.getNumLayers() - 1;
        boolean serves = info.getFirstLayer() <= needed && needed < info.getEndLayer();
        if (!serves) {
            return List.of(holders.getFirst().address() + " holds " + part + " but serves "
                    + span(info.getFirstLayer(), info.getEndLayer()) + ", not layer " + needed);
        }
        return List.of();
    }

    /** "layers 12-13 are" for [12, 14), "layer 12 is" for [12, 13). */
    private static String layers(int first, int end) {
        return span(first, end) + (end - first == 1 ? " is" : " are");
    }

    /** "layers 12-13" for [12, 14), "layer 12" for [12, 13). */
    private static String span(int first, int end) {
        return end - first == 1 ? "layer " + first : "layers " + first + "-" + (end - 1);
    }

    /** "127.0.0.1:9100 serves 0-11 (embedding), 127.0.0.1:9101 serves 12-23 (head)". */
    static String describe(List<Member> members) {
        return members.stream().map(m -> {
            ShardInfo info = m.info();
            String roles = (info.getHasEmbedding() ? " embedding" : "") + (info.getHasHead() ? " head" : "");
            return m.address() + " serves " + info.getFirstLayer() + "-" + (info.getEndLayer() - 1)
                    + (roles.isEmpty() ? "" : " (" + roles.strip().replace(' ', '+') + ")");
        }).collect(Collectors.joining(", "));
    }
}
