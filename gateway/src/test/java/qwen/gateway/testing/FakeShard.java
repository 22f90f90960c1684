package qwen.gateway.testing;

import com.google.protobuf.ByteString;
import io.grpc.Status;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import qwen.gateway.shard.Shard;
import qwen.gateway.shard.ShardException;
import qwen.proto.shard.v1.HiddenEncoding;
import qwen.proto.shard.v1.HiddenStates;
import qwen.proto.shard.v1.ReleaseResponse;
import qwen.proto.shard.v1.SampledToken;
import qwen.proto.shard.v1.SequenceError;
import qwen.proto.shard.v1.SequenceErrorCode;
import qwen.proto.shard.v1.SequenceResult;
import qwen.proto.shard.v1.SequenceStep;
import qwen.proto.shard.v1.ShardInfo;
import qwen.proto.shard.v1.StepRequest;
import qwen.proto.shard.v1.StepResponse;

/**
 * An in-memory shard that keeps the contract's KV bookkeeping (held positions per sequence,
 * truncation on a lower start, FAILED_PRECONDITION above it, a KV capacity) and "samples" with a
 * deterministic function of every id the sequence holds, so a scheduler that sends the wrong ids
 * gets different tokens. Records every request for assertions. For tests without processes.
 */
public final class FakeShard implements Shard {

    /** The fake model: the next token after a sequence's ids. */
    @FunctionalInterface
    public interface Model {
        int next(String sequenceId, int[] ids);
    }

    /** A fixed mixing function of the whole prefix, in [1000, 31000). */
    public static final Model HASH = (sequenceId, ids) -> {
        long h = 17;
        for (int id : ids) {
            h = h * 1_000_003 + id;
        }
        return (int) Math.floorMod(h ^ (h >>> 29), 30_000) + 1000;
    };

    private final String address;
    private final ShardInfo info;
    private final Map<String, int[]> kv = new HashMap<>();
    private final List<StepRequest> requests = new ArrayList<>();
    private volatile Model model = HASH;
    private volatile boolean down;
    private volatile CountDownLatch gate;
    private volatile long stepDelayMillis;
    private volatile long tokenDelayNanos;

    public FakeShard(String address, ShardInfo info) {
        this.address = address;
        this.info = info;
    }

    /** A one-shard pipeline of a 2-layer model with the given context length and KV capacity (0: none said). */
    public static FakeShard whole(int seqLength, int kvCapacityTokens) {
        return new FakeShard("fake:1", info(0, 2, 2, true, true).toBuilder().setSeqLength(seqLength)
                .setKvCapacityTokens(kvCapacityTokens).build());
    }

    /** Info of a shard of a {@code numLayers}-layer fake model serving [first, end). */
    public static ShardInfo info(int first, int end, int numLayers, boolean embedding, boolean head) {
        return ShardInfo.newBuilder().setModelId("fake/model").setNumLayers(numLayers).setFirstLayer(first)
                .setEndLayer(end).setLayerRange(first + "-" + (end - 1)).setHasEmbedding(embedding).setHasHead(head)
                .setHiddenSize(8).setVocabSize(151936).setSeqLength(8192).setRandomWeights(true).build();
    }

    public void model(Model model) {
        this.model = model;
    }

    /** While down, every call fails with UNAVAILABLE. */
    public void down(boolean down) {
        this.down = down;
    }

    /** Steps wait for the latch (null: they run at once). */
    public void gate(CountDownLatch gate) {
        this.gate = gate;
    }

    public void stepDelay(long millis) {
        this.stepDelayMillis = millis;
    }

    /** Each step also takes this long per token it carries, as compute would. */
    public void tokenDelay(java.time.Duration perToken) {
        this.tokenDelayNanos = perToken.toNanos();
    }

    /** Forgets every sequence's KV, as a restarted shard would. */
    public synchronized void dropKv() {
        kv.clear();
    }

    public synchronized int sequencesHeld() {
        return kv.size();
    }

    public synchronized int heldPositions(String sequenceId) {
        int[] ids = kv.get(sequenceId);
        return ids == null ? 0 : ids.length;
    }

    /** The ids whose KV this shard holds for the sequence (empty when none). */
    public synchronized int[] heldIds(String sequenceId) {
        return kv.getOrDefault(sequenceId, new int[0]).clone();
    }

    public synchronized List<StepRequest> requests() {
        return List.copyOf(requests);
    }

    @Override
    public String address() {
        return address;
    }

    @Override
    public synchronized ShardInfo info() {
        check();
        return info.toBuilder().setSequencesHeld(kv.size()).build();
    }

    @Override
    public CompletableFuture<StepResponse> step(StepRequest request) {
        try {
            CountDownLatch latch = gate;
            if (latch != null && !latch.await(30, TimeUnit.SECONDS)) {
                throw new IllegalStateException("the test never opened the gate");
            }
            if (stepDelayMillis > 0) {
                Thread.sleep(stepDelayMillis);
            }
            long perToken = tokenDelayNanos;
            if (perToken > 0) {
                long tokens = request.getSequencesList().stream().mapToLong(SequenceStep::getTokenIdsCount).sum();
                Thread.sleep(java.time.Duration.ofNanos(perToken * tokens));
            }
            return CompletableFuture.completedFuture(run(request));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return CompletableFuture.failedFuture(e);
        } catch (ShardException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    @Override
    public void resetStream(String reason) {
    }

    @Override
    public synchronized ReleaseResponse release(List<String> sequenceIds) {
        check();
        int released = 0;
        for (String id : sequenceIds) {
            released += kv.remove(id) != null ? 1 : 0;
        }
        return ReleaseResponse.newBuilder().setReleased(released).setUnknown(sequenceIds.size() - released).build();
    }

    @Override
    public synchronized ReleaseResponse releasePrefix(String prefix) {
        check();
        List<String> ids = kv.keySet().stream().filter(id -> id.startsWith(prefix)).toList();
        ids.forEach(kv::remove);
        return ReleaseResponse.newBuilder().setReleased(ids.size()).build();
    }

    @Override
    public void close() {
    }

    private synchronized StepResponse run(StepRequest request) {
        check();
        requests.add(request);
        StepResponse.Builder response = StepResponse.newBuilder().setStepId(request.getStepId());
        for (SequenceStep entry : request.getSequencesList()) {
            response.addResults(run(entry));
        }
        return response.build();
    }

    private SequenceResult run(SequenceStep entry) {
        String id = entry.getSequenceId();
        int[] held = kv.getOrDefault(id, new int[0]);
        SequenceResult.Builder result = SequenceResult.newBuilder().setSequenceId(id);
        if (entry.getStartPosition() > held.length) {
            return result.setHeldPositions(held.length).setError(SequenceError.newBuilder()
                    .setCode(SequenceErrorCode.SEQUENCE_ERROR_CODE_FAILED_PRECONDITION)
                    .setMessage("start_position " + entry.getStartPosition() + " but this shard holds "
                            + held.length + " positions of " + id)).build();
        }
        int length = entry.getStartPosition() + entry.getTokenIdsCount();
        long others = kv.entrySet().stream().filter(e -> !e.getKey().equals(id)).mapToLong(e -> e.getValue().length).sum();
        if (info.getKvCapacityTokens() > 0 && others + length > info.getKvCapacityTokens()) {
            return result.setHeldPositions(held.length).setError(SequenceError.newBuilder()
                    .setCode(SequenceErrorCode.SEQUENCE_ERROR_CODE_RESOURCE_EXHAUSTED)
                    .setMessage("KV budget full")).build();
        }
        if (!info.getHasEmbedding() && entry.getHidden().getData().size() != entry.getTokenIdsCount() * 8 * 4) {
            throw new ShardException(address, Status.Code.INVALID_ARGUMENT, "hidden rows missing for " + id, null);
        }
        int[] ids = Arrays.copyOf(held, length);
        for (int i = 0; i < entry.getTokenIdsCount(); i++) {
            ids[entry.getStartPosition() + i] = entry.getTokenIds(i);
        }
        kv.put(id, ids);
        result.setHeldPositions(length);
        if (!info.getHasHead()) {
            return result.setHidden(HiddenStates.newBuilder().setEncoding(HiddenEncoding.HIDDEN_ENCODING_F32)
                    .setData(ByteString.copyFrom(new byte[entry.getTokenIdsCount() * 8 * 4]))).build();
        }
        if (entry.getSample()) {
            int next = model.next(id, ids);
            SampledToken.Builder token = SampledToken.newBuilder().setTokenId(next).setLogprob(-0.5f);
            for (int k = 0; k < entry.getSampling().getTopLogprobs(); k++) {
                token.addTopLogprobsBuilder().setTokenId(next + k).setLogprob(-0.5f - k);
            }
            result.setSampled(token);
        }
        return result.build();
    }

    private void check() {
        if (down) {
            throw new ShardException(address, Status.Code.UNAVAILABLE, "connection refused", null);
        }
    }
}
