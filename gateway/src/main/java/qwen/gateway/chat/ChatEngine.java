package qwen.gateway.chat;

import io.smallrye.mutiny.Multi;
import io.smallrye.mutiny.infrastructure.Infrastructure;
import io.smallrye.mutiny.subscription.MultiEmitter;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;
import org.jboss.logging.Logger;
import qwen.gateway.scheduler.ScheduledSequence;
import qwen.gateway.scheduler.StepScheduler;
import qwen.gateway.shard.Pipeline;
import qwen.gateway.tokenizer.QwenTokenizer;
import qwen.proto.shard.v1.SamplingParams;

/**
 * The generation engine over the shard pipeline and the step scheduler.
 *
 * <p>KV reuse: for every kept sequence (a session) the engine remembers the exact ids the shards
 * hold. A new request on that sequence starts at the longest common prefix of those ids and its
 * prompt, so a session's next turn prefills only what is new; the prefix is reported as
 * {@code cachedPromptTokens}. A prompt longer than the model's seq_length is prefilled from
 * position 0 instead, because the shards fix dynamic NTK scaling by the prefill length.
 *
 * <p>Events are emitted on Mutiny's default executor (Quarkus' worker pool), never on the
 * scheduler's loop or a Vert.x event loop.
 */
public final class ChatEngine implements Generations, AutoCloseable {

    private static final Logger LOG = Logger.getLogger(ChatEngine.class);

    /** SequenceStep.sequence_id is 1 to 128 bytes, of which the instance prefix takes 12. */
    private static final int MAX_SEQUENCE_ID_BYTES = 116;

    private final QwenTokenizer tokenizer;
    private final Supplier<Pipeline> pipelines;
    private final int maxStepTokens;
    private final int maxQueuedRequests;
    private final String instancePrefix;
    private final HeldSequences held = new HeldSequences();
    private final ConcurrentHashMap<String, ScheduledSequence> running = new ConcurrentHashMap<>();

    private record Runtime(StepScheduler scheduler, int seqLength, int vocabSize) {
    }

    private volatile Runtime runtime; // created on first use, when the pipeline is up
    private boolean closed;

    /**
     * @param pipelines the pipeline, or a GatewayException UNAVAILABLE while it is not connected;
     *     asked on first use until it answers
     * @param maxStepTokens tokens per step (the pipeline's own limit lowers it)
     * @param maxQueuedRequests requests that may wait to start
     */
    public ChatEngine(QwenTokenizer tokenizer, Supplier<Pipeline> pipelines, int maxStepTokens, int maxQueuedRequests) {
        this(tokenizer, pipelines, maxStepTokens, maxQueuedRequests, HexFormat.of().toHexDigits(new SecureRandom().nextInt()));
    }

    /**
     * @param instanceId this gateway's id on the shards (8 hex digits), kept across restarts: on first
     *     use the engine frees every sequence an earlier run under the same id left on the shards
     */
    public ChatEngine(QwenTokenizer tokenizer, Supplier<Pipeline> pipelines, int maxStepTokens, int maxQueuedRequests,
                      String instanceId) {
        if (!instanceId.matches("[0-9a-f]{8}")) {
            throw new IllegalArgumentException("the instance id must be 8 lower-case hex digits, got '" + instanceId + "'");
        }
        this.instancePrefix = "gw-" + instanceId + "/";
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
        this.pipelines = Objects.requireNonNull(pipelines, "pipelines");
        this.maxStepTokens = maxStepTokens;
        this.maxQueuedRequests = maxQueuedRequests;
    }

    @Override
    public Multi<GenerationEvent> generate(GenerationRequest request) {
        Objects.requireNonNull(request, "request");
        return Multi.createFrom().<GenerationEvent>emitter(emitter -> start(request, emitter))
                .emitOn(Infrastructure.getDefaultExecutor());
    }

    @Override
    public boolean cancel(String requestId) {
        ScheduledSequence sequence = running.get(requestId);
        if (sequence == null) {
            return false;
        }
        sequence.cancel();
        return true;
    }

    @Override
    public void release(String sequenceId) {
        String shardId = shardSequenceId(sequenceId);
        held.forget(shardId);
        try {
            runtime().scheduler().release(shardId);
        } catch (GatewayException e) {
            LOG.debugf("not releasing %s: %s", sequenceId, e.getMessage());
        }
    }

    /**
     * The id the shards know a sequence by: this engine's instance prefix, then {@code sequenceId},
     * so that gateways sharing shards never mix up their sequences (SequenceStep.sequence_id).
     */
    public String shardSequenceId(String sequenceId) {
        return instancePrefix + sequenceId;
    }

    @Override
    public int queuedRequests() {
        Runtime current = runtime;
        return current == null ? 0 : current.scheduler().queuedRequests();
    }

    @Override
    public int idleSequences() {
        return held.idleCount();
    }

    @Override
    public Set<String> idleSequenceIds() {
        Set<String> ids = new HashSet<>();
        for (String shardId : held.idleIds()) {
            if (shardId.startsWith(instancePrefix)) {
                ids.add(shardId.substring(instancePrefix.length()));
            }
        }
        return ids;
    }

    @Override
    public int runningSequences() {
        Runtime current = runtime;
        return current == null ? 0 : current.scheduler().runningSequences();
    }

    /** Stops the scheduler; running generations fail with UNAVAILABLE. */
    @Override
    public synchronized void close() {
        closed = true;
        if (runtime != null) {
            runtime.scheduler().close();
        }
    }

    private void start(GenerationRequest request, MultiEmitter<? super GenerationEvent> emitter) {
        try {
            checkIds(request);
            Runtime rt = runtime();
            checkPrompt(request.promptIds(), rt.vocabSize());
            ScheduledSequence sequence = claim(request, rt, emitter);
            emitter.onTermination(sequence::cancel); // a no-op once it has ended
        } catch (GatewayException e) {
            emitter.fail(e);
        } catch (RuntimeException e) {
            LOG.error("could not start request " + request.requestId(), e);
            emitter.fail(new GatewayException(GatewayException.Kind.INTERNAL, "could not start the generation: " + e));
        }
    }

    /** Registers the request, works out the reused prefix and queues the sequence. */
    private ScheduledSequence claim(GenerationRequest request, Runtime rt, MultiEmitter<? super GenerationEvent> emitter) {
        int[] prompt = request.promptIds();
        GenerationSettings settings = request.settings();
        if (running.containsKey(request.requestId())) {
            throw new GatewayException(GatewayException.Kind.ALREADY_EXISTS,
                    "request id " + request.requestId() + " is already in use");
        }
        String shardId = shardSequenceId(request.sequenceId());
        int[] heldIds = held.claim(shardId);
        int cached = prompt.length > rt.seqLength() ? 0 : Math.min(commonPrefix(heldIds, prompt), prompt.length - 1);
        int contextLimit = prompt.length < rt.seqLength() ? rt.seqLength() : Integer.MAX_VALUE;
        Generation generation = new Generation(request, cached, contextLimit, tokenizer, emitter, this::settle);
        ScheduledSequence sequence = new ScheduledSequence(shardId, prompt, cached, request.keepKv(),
                sampling(settings), (long) prompt.length + settings.maxNewTokens(), generation);
        if (running.putIfAbsent(request.requestId(), sequence) != null) {
            held.settle(shardId, heldIds);
            throw new GatewayException(GatewayException.Kind.ALREADY_EXISTS,
                    "request id " + request.requestId() + " is already in use");
        }
        synchronized (generation) { // Started goes out before any token the loop emits
            try {
                rt.scheduler().submit(sequence);
            } catch (GatewayException e) {
                running.remove(request.requestId());
                held.settle(shardId, heldIds);
                throw e;
            }
            generation.started();
        }
        return sequence;
    }

    /** The generation left the scheduler: remember what the shards hold, free its ids. */
    private void settle(Generation generation, int[] heldIds) {
        GenerationRequest request = generation.request();
        held.settle(shardSequenceId(request.sequenceId()), request.keepKv() ? heldIds : new int[0]);
        running.remove(request.requestId());
    }

    private Runtime runtime() {
        Runtime current = runtime;
        if (current != null) {
            return current;
        }
        synchronized (this) {
            if (closed) {
                throw new GatewayException(GatewayException.Kind.UNAVAILABLE, "the gateway is shutting down");
            }
            if (runtime == null) {
                Pipeline pipeline = pipelines.get();
                // KV an earlier run of this gateway left behind (it crashed, or stopped mid-turn) is
                // nobody's now: the sessions' next turns prefill from their stored history.
                int orphans = pipeline.releasePrefix(instancePrefix);
                if (orphans > 0) {
                    LOG.infof("freed %d sequence(s) an earlier run of this gateway left on the shards", orphans);
                }
                int stepTokens = (int) Math.min(maxStepTokens, pipeline.maxStepTokens());
                StepScheduler scheduler = new StepScheduler(pipeline,
                        new StepScheduler.Options(stepTokens, maxQueuedRequests, pipeline.kvCapacityTokens(),
                                pipeline.kvPageTokens()), held);
                runtime = new Runtime(scheduler, pipeline.seqLength(), pipeline.vocabSize());
            }
            return runtime;
        }
    }

    private static void checkIds(GenerationRequest request) {
        if (request.requestId() == null || request.requestId().isEmpty()) {
            throw GatewayException.invalid("the request id is empty");
        }
        String sequenceId = request.sequenceId();
        int bytes = sequenceId == null ? 0 : sequenceId.getBytes(StandardCharsets.UTF_8).length;
        if (bytes < 1 || bytes > MAX_SEQUENCE_ID_BYTES) {
            throw GatewayException.invalid("the sequence id must be 1 to " + MAX_SEQUENCE_ID_BYTES
                    + " bytes of UTF-8, got " + bytes);
        }
        if (request.settings() == null) {
            throw GatewayException.invalid("the request has no generation settings");
        }
    }

    private static void checkPrompt(int[] prompt, int vocabSize) {
        if (prompt == null || prompt.length == 0) {
            throw GatewayException.invalid("the prompt is empty");
        }
        for (int i = 0; i < prompt.length; i++) {
            if (prompt[i] < 0 || prompt[i] >= vocabSize) {
                throw GatewayException.invalid("prompt token " + i + " is id " + prompt[i]
                        + ", outside the model's vocabulary [0, " + vocabSize + ")");
            }
        }
    }

    private static int commonPrefix(int[] a, int[] b) {
        int n = Math.min(a.length, b.length);
        int i = 0;
        while (i < n && a[i] == b[i]) {
            i++;
        }
        return i;
    }

    private static SamplingParams sampling(GenerationSettings settings) {
        return SamplingParams.newBuilder()
                .setGreedy(settings.greedy())
                .setTemperature(settings.greedy() ? 1f : settings.temperature())
                .setTopK(settings.topK())
                .setTopP(settings.topP())
                .setRepetitionPenalty(settings.repetitionPenalty())
                .setSeed(settings.seed())
                .setTopLogprobs(settings.logprobs() ? settings.topLogprobs() : 0)
                .build();
    }
}
