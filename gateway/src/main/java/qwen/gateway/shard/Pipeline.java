package qwen.gateway.shard;

import io.grpc.Status;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import org.jboss.logging.Logger;
import qwen.proto.shard.v1.HiddenEncoding;
import qwen.proto.shard.v1.HiddenStates;
import qwen.proto.shard.v1.SequenceStep;
import qwen.proto.shard.v1.ShardInfo;
import qwen.proto.shard.v1.StepRequest;
import qwen.proto.shard.v1.StepResponse;

/**
 * The shards of one model in layer order, driven as one: a step goes through every shard in turn
 * (token ids into the first, F32 hidden rows from each into the next, token ids to every shard for
 * the repetition penalty) and comes back as one {@link SequenceOutcome} per sequence.
 *
 * <p>{@link #step} is called by one thread at a time (the scheduler's loop).
 */
public final class Pipeline implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(Pipeline.class);

    private final List<Shard> shards;
    private final List<ShardInfo> infos;
    private final Duration stepTimeout;
    private final int microBatches;
    private final AtomicLong stepIds = new AtomicLong();
    // Hands each micro-batch from one shard to the next, off the gRPC threads that complete the answers.
    private final ExecutorService handOff = Executors.newVirtualThreadPerTaskExecutor();

    private Pipeline(List<Shard> shards, List<ShardInfo> infos, Duration stepTimeout, int microBatches) {
        this.shards = shards;
        this.infos = infos;
        this.stepTimeout = stepTimeout;
        this.microBatches = microBatches;
    }

    /**
     * Asks every shard's Info and checks that they form one pipeline. The shards are closed if
     * this fails.
     *
     * @param shards the shards in any order; the pipeline owns them from here on
     * @param stepTimeout how long one shard may take for one step
     * @throws ShardException when a shard does not answer Info
     * @throws PipelineLayoutException when the shards do not form one pipeline of one model
     */
    public static Pipeline open(List<? extends Shard> shards, Duration stepTimeout) {
        return open(shards, stepTimeout, 0);
    }

    /**
     * Like {@link #open(List, Duration)}, splitting each step into micro-batches that flow through
     * the shards one behind the other (see {@link #step}).
     *
     * @param microBatches micro-batches per step; 0: as many as there are shards; 1: none
     */
    public static Pipeline open(List<? extends Shard> shards, Duration stepTimeout, int microBatches) {
        Objects.requireNonNull(stepTimeout, "stepTimeout");
        if (microBatches < 0) {
            throw new IllegalArgumentException("micro-batches must be >= 0, got " + microBatches);
        }
        try {
            List<PipelineLayout.Member> members = new ArrayList<>();
            for (Shard shard : shards) {
                members.add(new PipelineLayout.Member(shard.address(), shard.info()));
            }
            List<PipelineLayout.Member> ordered = PipelineLayout.order(members);
            List<Shard> orderedShards = new ArrayList<>();
            for (PipelineLayout.Member member : ordered) {
                orderedShards.add(shards.stream().filter(s -> s.address().equals(member.address())
                        && !orderedShards.contains(s)).findFirst().orElseThrow());
            }
            LOG.infof("pipeline of %d shard(s): %s", ordered.size(), PipelineLayout.describe(ordered));
            return new Pipeline(List.copyOf(orderedShards),
                    ordered.stream().map(PipelineLayout.Member::info).toList(), stepTimeout,
                    microBatches == 0 ? orderedShards.size() : microBatches);
        } catch (RuntimeException e) {
            shards.forEach(Shard::close);
            throw e;
        }
    }

    /** The model as the shards described it at start-up. */
    public ModelCard modelCard() {
        List<ModelCard.ShardDescription> described = new ArrayList<>();
        for (int i = 0; i < shards.size(); i++) {
            described.add(description(shards.get(i).address(), infos.get(i), true));
        }
        return card(described);
    }

    /** The model with each shard's current KV figures; a shard that does not answer is not serving. */
    public ModelCard describe() {
        List<ModelCard.ShardDescription> described = new ArrayList<>();
        for (int i = 0; i < shards.size(); i++) {
            Shard shard = shards.get(i);
            try {
                described.add(description(shard.address(), shard.info(), true));
            } catch (ShardException e) {
                described.add(description(shard.address(), infos.get(i), false));
            }
        }
        return card(described);
    }

    /**
     * Asks every shard's Info now.
     *
     * @return one line per shard that does not answer ({@code address: reason}); empty when all serve
     */
    public List<String> unreachableShards() {
        List<String> down = new ArrayList<>();
        for (Shard shard : shards) {
            try {
                shard.info();
            } catch (ShardException e) {
                down.add(shard.address() + ": " + e.getMessage());
            }
        }
        return down;
    }

    /** The model's context length in tokens (ShardInfo.seq_length). */
    public int seqLength() {
        return infos.getFirst().getSeqLength();
    }

    /** Valid token ids are [0, vocabSize). */
    public int vocabSize() {
        return infos.getFirst().getVocabSize();
    }

    /** The most tokens one step may carry: the smallest ShardInfo.max_step_tokens (0 = no limit). */
    public int maxStepTokens() {
        return infos.stream().mapToInt(ShardInfo::getMaxStepTokens).filter(n -> n > 0).min().orElse(Integer.MAX_VALUE);
    }

    /** Token positions every shard can hold at once: the smallest ShardInfo.kv_capacity_tokens (0 = unknown). */
    public long kvCapacityTokens() {
        return infos.stream().mapToLong(ShardInfo::getKvCapacityTokens).filter(n -> n > 0).min().orElse(Long.MAX_VALUE);
    }

    /** The KV page size admission rounds reservations up to: the largest ShardInfo.kv_page_tokens (at least 1). */
    public int kvPageTokens() {
        return Math.max(1, infos.stream().mapToInt(ShardInfo::getKvPageTokens).max().orElse(1));
    }

    /**
     * Runs one step through every shard in layer order.
     *
     * <p>With several shards the batch is split into micro-batches of about equal token counts
     * (at most one per sequence), each sent on through the shards as soon as the previous shard
     * answers it: while shard k computes micro-batch j, shard k-1 computes micro-batch j+1, so the
     * shards work at once instead of in turn. The outcomes are those of the whole batch in one piece.
     *
     * @param batch the sequences, each at most once
     * @return one outcome per entry of {@code batch}, in the same order
     * @throws ShardException when a shard fails the whole step (down, timed out, broke the contract);
     *     the KV of the batch's sequences is then undefined past their start positions
     */
    public List<SequenceOutcome> step(List<SequenceWork> batch) {
        SequenceOutcome[] outcomes = new SequenceOutcome[batch.size()];
        HiddenStates[] hidden = new HiddenStates[batch.size()];
        List<List<Integer>> groups = MicroBatches.split(batch, shards.size() == 1 ? 1 : Math.min(microBatches, batch.size()));
        if (groups.size() == 1) {
            List<Integer> live = groups.getFirst();
            for (int s = 0; s < shards.size() && !live.isEmpty(); s++) {
                Shard shard = shards.get(s);
                StepResponse response = await(shard, request(batch, live, hidden, s > 0, s == shards.size() - 1));
                live = StepAnswers.absorb(shard, s == shards.size() - 1, response, batch, live, outcomes, hidden);
            }
            return List.of(outcomes);
        }
        List<CompletableFuture<Void>> flows = new ArrayList<>();
        for (List<Integer> group : groups) { // sent in order: the first shard gets every micro-batch at once
            flows.add(flow(0, batch, group, outcomes, hidden));
        }
        ShardException failure = null;
        for (CompletableFuture<Void> flow : flows) { // every micro-batch settles before the step returns
            try {
                flow.get();
            } catch (ExecutionException e) {
                failure = failure != null ? failure : asShardException(e.getCause());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                shards.forEach(shard -> shard.resetStream("the gateway is stopping"));
                throw new ShardException(shards.getFirst().address(), Status.Code.CANCELLED, "interrupted", e);
            }
        }
        if (failure != null) {
            throw failure;
        }
        return List.of(outcomes);
    }

    /** Sends micro-batch {@code live} to shard {@code s}, then on to the next shard when it answers. */
    private CompletableFuture<Void> flow(int s, List<SequenceWork> batch, List<Integer> live,
                                         SequenceOutcome[] outcomes, HiddenStates[] hidden) {
        if (s == shards.size() || live.isEmpty()) {
            return CompletableFuture.completedFuture(null);
        }
        Shard shard = shards.get(s);
        StepRequest request = request(batch, live, hidden, s > 0, s == shards.size() - 1);
        return shard.step(request)
                .orTimeout(stepTimeout.toNanos(), TimeUnit.NANOSECONDS)
                .handle((response, error) -> {
                    if (error != null) {
                        throw failure(shard, request, error);
                    }
                    return response;
                })
                .thenComposeAsync(response -> flow(s + 1, batch, StepAnswers.absorb(shard, s == shards.size() - 1,
                        response, batch, live, outcomes, hidden), outcomes, hidden), handOff);
    }

    /** Frees the named sequences' KV on every shard; a shard that does not answer is skipped (logged). */
    public void release(Collection<String> sequenceIds) {
        if (sequenceIds.isEmpty()) {
            return;
        }
        List<String> ids = List.copyOf(sequenceIds);
        for (Shard shard : shards) {
            try {
                shard.release(ids);
            } catch (ShardException e) {
                LOG.warnf("could not release %d sequence(s) on %s: %s", ids.size(), shard.address(), e.getMessage());
            }
        }
    }

    /**
     * Frees every sequence whose id starts with {@code prefix} on every shard; a shard that does not
     * answer is skipped (logged). Returns how many sequences the shards freed in all.
     */
    public int releasePrefix(String prefix) {
        int released = 0;
        for (Shard shard : shards) {
            try {
                released += shard.releasePrefix(prefix).getReleased();
            } catch (ShardException e) {
                LOG.warnf("could not release the sequences %s* on %s: %s", prefix, shard.address(), e.getMessage());
            }
        }
        return released;
    }

    @Override
    public void close() {
        handOff.shutdownNow();
        shards.forEach(Shard::close);
    }

    private StepRequest request(List<SequenceWork> batch, List<Integer> live, HiddenStates[] hidden,
                                boolean withHidden, boolean head) {
        StepRequest.Builder request = StepRequest.newBuilder()
                .setStepId(stepIds.getAndIncrement())
                .setOutputEncoding(HiddenEncoding.HIDDEN_ENCODING_F32);
        for (int i : live) {
            SequenceWork work = batch.get(i);
            SequenceStep.Builder entry = request.addSequencesBuilder()
                    .setSequenceId(work.sequenceId())
                    .setStartPosition(work.startPosition())
                    .setPrefillTokens(work.prefillTokens());
            for (int id : work.tokenIds()) {
                entry.addTokenIds(id);
            }
            if (withHidden) {
                entry.setHidden(hidden[i]);
            }
            if (head && work.sample()) {
                entry.setSample(true).setSampling(work.sampling());
            }
        }
        return request.build();
    }

    private StepResponse await(Shard shard, StepRequest request) {
        CompletableFuture<StepResponse> answer = shard.step(request);
        try {
            return answer.get(stepTimeout.toNanos(), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            throw failure(shard, request, e);
        } catch (ExecutionException e) {
            throw failure(shard, request, e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            shard.resetStream("the gateway is stopping");
            throw new ShardException(shard.address(), Status.Code.CANCELLED, "interrupted", e);
        }
    }

    /** A shard's failure of one request as a ShardException; a timeout also resets the shard's stream. */
    private ShardException failure(Shard shard, StepRequest request, Throwable error) {
        Throwable cause = error instanceof CompletionException && error.getCause() != null ? error.getCause() : error;
        if (cause instanceof TimeoutException) {
            String reason = "step " + request.getStepId() + " took longer than " + stepTimeout;
            shard.resetStream(reason);
            return new ShardException(shard.address(), Status.Code.DEADLINE_EXCEEDED, reason, cause);
        }
        return ShardException.of(shard.address(), cause);
    }

    private ShardException asShardException(Throwable error) {
        Throwable cause = error instanceof CompletionException && error.getCause() != null ? error.getCause() : error;
        return cause instanceof ShardException e ? e
                : new ShardException(shards.getFirst().address(), Status.Code.INTERNAL, "step failed: " + cause, cause);
    }

    private static ModelCard.ShardDescription description(String address, ShardInfo info, boolean serving) {
        return new ModelCard.ShardDescription(address, info.getFirstLayer(), info.getEndLayer(),
                info.getBackend().name().replaceFirst("^BACKEND_", ""), info.getDevice(),
                info.getWeightDtype().name().replaceFirst("^WEIGHT_DTYPE_", ""), info.getKvCapacityTokens(),
                info.getKvBytesInUse(), serving);
    }

    private ModelCard card(List<ModelCard.ShardDescription> described) {
        ShardInfo first = infos.getFirst();
        boolean random = infos.stream().anyMatch(ShardInfo::getRandomWeights);
        return new ModelCard(first.getModelId(), first.getNumLayers(), first.getHiddenSize(), first.getSeqLength(),
                first.getVocabSize(), random, List.copyOf(described));
    }
}
