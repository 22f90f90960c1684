package qwen.service.grpc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static qwen.service.grpc.Steps.PROMPT;
import static qwen.service.grpc.Steps.greedy;
import static qwen.service.grpc.Steps.request;

import grpc.health.v1.HealthGrpc;
import grpc.health.v1.HealthOuterClass.HealthCheckRequest;
import grpc.health.v1.HealthOuterClass.HealthCheckResponse.ServingStatus;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quarkus.test.junit.QuarkusTest;
import jakarta.inject.Inject;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import qwen.proto.shard.v1.Backend;
import qwen.proto.shard.v1.InfoRequest;
import qwen.proto.shard.v1.ReleaseRequest;
import qwen.proto.shard.v1.ReleaseResponse;
import qwen.proto.shard.v1.SampledToken;
import qwen.proto.shard.v1.SequenceErrorCode;
import qwen.proto.shard.v1.SequenceResult;
import qwen.proto.shard.v1.SequenceStep;
import qwen.proto.shard.v1.ShardInfo;
import qwen.proto.shard.v1.ShardServiceGrpc;
import qwen.proto.shard.v1.StepRequest;
import qwen.proto.shard.v1.StepResponse;
import qwen.proto.shard.v1.WeightDtype;
import qwen.service.engine.EngineOptions;
import qwen.service.engine.ShardEngine;
import qwen.service.engine.StepInput;
import qwen.service.engine.StepOutput;
import qwen.service.sampling.SamplingParams;

/**
 * The shard's gRPC contract (shard.proto) on the whole 2-layer TINY demo model of the %test
 * profile, spoken to over TCP like the gateway does. Answers are checked against a ShardEngine
 * opened directly on the same checkpoint.
 */
@QuarkusTest
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ShardGrpcServiceTest {

    @Inject
    ShardRuntime runtime;

    ShardClient client;
    ShardEngine reference;

    @BeforeAll
    void openReference() {
        reference = ShardEngine.open(new EngineOptions(runtime.settings().modelDir(), null, EngineOptions.KernelSet.VECTOR, 2, 64L << 20));
    }

    @AfterAll
    void closeReference() {
        reference.close();
    }

    @BeforeEach
    void connect() {
        client = new ShardClient();
    }

    @AfterEach
    void disconnect() throws InterruptedException {
        client.close();
    }

    @Test
    void infoDescribesTheWholeTinyModelAndItsKvBudget() {
        ShardInfo info = client.blocking.info(InfoRequest.getDefaultInstance());
        assertEquals("qwen-demo-tiny", info.getModelId());
        assertEquals(2, info.getNumLayers());
        assertEquals(0, info.getFirstLayer());
        assertEquals(2, info.getEndLayer());
        assertEquals("0-1", info.getLayerRange());
        assertTrue(info.getHasEmbedding());
        assertTrue(info.getHasHead());
        assertEquals(64, info.getHiddenSize());
        assertEquals(151936, info.getVocabSize());
        assertEquals(8192, info.getSeqLength());
        assertEquals(WeightDtype.WEIGHT_DTYPE_BF16, info.getWeightDtype());
        assertEquals(Backend.BACKEND_CPU, info.getBackend());
        assertTrue(info.getDevice().contains("2 threads"), info.getDevice());
        assertEquals(64L << 20, info.getKvBudgetBytes(), "%test kv-budget-mb is 64");
        assertEquals(2L * 2 * 64 * 4, info.getKvBytesPerToken(), "2 layers x (K, V) x 64 floats");
        assertEquals(65536, info.getKvCapacityTokens(), "64 MiB / 1 KiB per token");
        assertEquals(512, info.getMaxStepTokens());
        assertTrue(info.getRandomWeights());
        assertEquals(0, info.getKvBytesInUse(), "no test may leave a sequence behind");
        assertEquals(0, info.getSequencesHeld());
    }

    @Test
    void healthSaysServingOnceTheEngineIsLoaded() {
        HealthGrpc.HealthBlockingStub health = HealthGrpc.newBlockingStub(client.channel);
        assertEquals(ServingStatus.SERVING, health.check(HealthCheckRequest.newBuilder().setService("").build()).getStatus());
        assertEquals(ServingStatus.SERVING, health.check(HealthCheckRequest.newBuilder()
                .setService(ShardServiceGrpc.SERVICE_NAME).build()).getStatus());
        StatusRuntimeException unknown = assertThrows(StatusRuntimeException.class,
                () -> health.check(HealthCheckRequest.newBuilder().setService("no.such.Service").build()));
        assertEquals(Status.Code.NOT_FOUND, unknown.getStatus().getCode());
        assertEquals(ServingStatus.SERVING, health.watch(HealthCheckRequest.getDefaultInstance()).next().getStatus());
    }

    @Test
    void greedyPromptThenContinuationMatchTheEngine() {
        StepOutput ref1 = reference.step(List.of(new StepInput("ref", 0, PROMPT, null, 0, true, SamplingParams.greedy(5)))).getFirst();
        try (ShardClient.StepCall call = client.step()) {
            call.send(request(7, greedy("greedy-1", 0, PROMPT, 5)));
            StepResponse first = call.next();
            assertEquals(7, first.getStepId());
            SequenceResult r1 = first.getResults(0);
            assertEquals(SequenceResult.OutcomeCase.SAMPLED, r1.getOutcomeCase(), r1.toString());
            assertEquals(PROMPT.length, r1.getHeldPositions());
            SampledToken t1 = r1.getSampled();
            assertEquals(ref1.sample().id(), t1.getTokenId(), "greedy token of the prompt");
            assertEquals(ref1.sample().logprob(), t1.getLogprob(), 1e-5f);
            assertTrue(t1.getLogprob() <= 0);
            assertEquals(5, t1.getTopLogprobsCount());
            assertEquals(t1.getTokenId(), t1.getTopLogprobs(0).getTokenId(), "greedy takes the most likely token");
            assertTrue(first.getForwardNs() > 0);
            assertTrue(first.getKvBytesInUse() > 0);

            int[] next = {t1.getTokenId()};
            StepOutput ref2 = reference.step(List.of(new StepInput("ref", PROMPT.length, next, null, 0, true,
                    SamplingParams.greedy(0)))).getFirst();
            call.send(request(8, greedy("greedy-1", PROMPT.length, next, 0)));
            SequenceResult r2 = call.next().getResults(0);
            assertEquals(PROMPT.length + 1, r2.getHeldPositions());
            assertEquals(ref2.sample().id(), r2.getSampled().getTokenId(), "greedy token of the continuation");
            assertEquals(0, r2.getSampled().getTopLogprobsCount());
        } finally {
            reference.release(List.of("ref"));
            release("greedy-1");
        }
    }

    @Test
    void startBeyondHeldPositionsFailsOnlyThatSequence() {
        try {
            StepResponse response = client.stepOnce(
                    greedy("gap-known", 0, PROMPT, 0),
                    greedy("gap-new", 3, new int[] {42}, 0));
            assertEquals(SequenceResult.OutcomeCase.SAMPLED, response.getResults(0).getOutcomeCase());
            SequenceResult gap = response.getResults(1);
            assertEquals("gap-new", gap.getSequenceId());
            assertEquals(SequenceErrorCode.SEQUENCE_ERROR_CODE_FAILED_PRECONDITION, gap.getError().getCode());
            assertEquals(0, gap.getHeldPositions());
            assertTrue(gap.getError().getMessage().contains("3"), gap.getError().getMessage());

            SequenceResult ahead = client.stepOnce(greedy("gap-known", PROMPT.length + 2, new int[] {42}, 0)).getResults(0);
            assertEquals(SequenceErrorCode.SEQUENCE_ERROR_CODE_FAILED_PRECONDITION, ahead.getError().getCode());
            assertEquals(PROMPT.length, ahead.getHeldPositions(), "the gateway re-prefills from here");
        } finally {
            release("gap-known", "gap-new");
        }
    }

    @Test
    void outOfVocabularyIdFailsTheSequenceAndKeepsTheStreamOpen() {
        try (ShardClient.StepCall call = client.step()) {
            call.send(request(1, greedy("oov", 0, new int[] {5, 151936}, 0)));
            SequenceResult bad = call.next().getResults(0);
            assertEquals(SequenceErrorCode.SEQUENCE_ERROR_CODE_INVALID_ARGUMENT, bad.getError().getCode());
            assertTrue(bad.getError().getMessage().contains("151936"), bad.getError().getMessage());
            assertEquals(0, bad.getHeldPositions());

            call.send(request(2, greedy("oov", 0, new int[] {5, 6}, 0)));
            assertEquals(SequenceResult.OutcomeCase.SAMPLED, call.next().getResults(0).getOutcomeCase());
        } finally {
            release("oov");
        }
    }

    @Test
    void samplingOutOfRangeFailsTheSequence() {
        SequenceStep zeroTemperature = SequenceStep.newBuilder().setSequenceId("hot").addTokenIds(5).setSample(true)
                .setSampling(qwen.proto.shard.v1.SamplingParams.newBuilder().setTemperature(0).setTopP(1).setRepetitionPenalty(1))
                .build();
        SequenceResult r = client.stepOnce(zeroTemperature).getResults(0);
        assertEquals(SequenceErrorCode.SEQUENCE_ERROR_CODE_INVALID_ARGUMENT, r.getError().getCode());
        assertTrue(r.getError().getMessage().contains("temperature"), r.getError().getMessage());
    }

    @Test
    void malformedRequestsEndTheStreamWithInvalidArgument() {
        expectInvalid(request(11, SequenceStep.newBuilder().setSequenceId("empty").build()), "empty");
        expectInvalid(request(12, greedy("twice", 0, PROMPT, 0), greedy("twice", 0, PROMPT, 0)), "twice");
        expectInvalid(request(13, SequenceStep.newBuilder().setSequenceId("nosampling").addTokenIds(5).setSample(true).build()),
                "nosampling");
        int[] tooMany = new int[513];
        Arrays.fill(tooMany, 5);
        String message = expectInvalid(request(14, greedy("long", 0, tooMany, 0)), "max_step_tokens");
        assertTrue(message.contains("step 14"), message);
        assertEquals(0, client.blocking.info(InfoRequest.getDefaultInstance()).getKvBytesInUse(), "malformed steps store nothing");
    }

    @Test
    void emptyStepIsAnsweredAndPipelinedStepsComeBackInOrder() {
        try (ShardClient.StepCall call = client.step()) {
            call.send(StepRequest.newBuilder().setStepId(100).build());
            for (int i = 0; i < 4; i++) {
                call.send(request(101 + i, greedy("pipe-" + i, 0, PROMPT, 0)));
            }
            StepResponse empty = call.next();
            assertEquals(100, empty.getStepId());
            assertEquals(0, empty.getResultsCount());
            for (int i = 0; i < 4; i++) {
                StepResponse r = call.next();
                assertEquals(101 + i, r.getStepId());
                assertEquals("pipe-" + i, r.getResults(0).getSequenceId());
            }
            call.close();
            assertEquals(Status.Code.OK, call.status().getCode());
        } finally {
            release("pipe-0", "pipe-1", "pipe-2", "pipe-3");
        }
    }

    @Test
    void releaseFreesTheKvCache() {
        client.stepOnce(greedy("rel-1", 0, PROMPT, 0), greedy("rel-2", 0, PROMPT, 0));
        ShardInfo busy = client.blocking.info(InfoRequest.getDefaultInstance());
        assertTrue(busy.getKvBytesInUse() > 0);
        assertEquals(2, busy.getSequencesHeld());
        ReleaseResponse released = client.blocking.release(ReleaseRequest.newBuilder()
                .addSequenceIds("rel-1").addSequenceIds("rel-2").addSequenceIds("never-seen").build());
        assertEquals(2, released.getReleased());
        assertEquals(1, released.getUnknown());
        assertEquals(0, released.getKvBytesInUse());
        ShardInfo idle = client.blocking.info(InfoRequest.getDefaultInstance());
        assertEquals(0, idle.getKvBytesInUse());
        assertEquals(0, idle.getSequencesHeld());
        SequenceResult again = client.stepOnce(greedy("rel-1", 1, new int[] {5}, 0)).getResults(0);
        assertEquals(SequenceErrorCode.SEQUENCE_ERROR_CODE_FAILED_PRECONDITION, again.getError().getCode(),
                "a released sequence starts afresh at 0");
        release("rel-1");
    }

    private String expectInvalid(StepRequest request, String mentioned) {
        try (ShardClient.StepCall call = client.step()) {
            call.send(request);
            String description = call.expectEnd(Status.Code.INVALID_ARGUMENT);
            assertTrue(description.contains(mentioned), "'" + description + "' should mention " + mentioned);
            return description;
        }
    }

    private void release(String... ids) {
        client.blocking.release(ReleaseRequest.newBuilder().addAllSequenceIds(List.of(ids)).build());
    }
}
