package qwen.service.grpc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import jakarta.inject.Inject;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import qwen.proto.shard.v1.HiddenStates;
import qwen.proto.shard.v1.InfoRequest;
import qwen.proto.shard.v1.ReleaseRequest;
import qwen.proto.shard.v1.SequenceResult;
import qwen.proto.shard.v1.SequenceStep;
import qwen.proto.shard.v1.ShardInfo;
import qwen.service.engine.EngineOptions;
import qwen.service.engine.ShardEngine;
import qwen.service.engine.StepInput;
import qwen.service.engine.StepOutput;
import qwen.service.sampling.SamplingParams;

/**
 * A last shard (layers "1-1" of the 2-layer TINY model) over gRPC: hidden rows from an engine
 * holding layer 0, sent as F32 or BF16, give the token an engine computes from the same rows.
 * Checks the input decoding end to end and the hidden-row checks of shard.proto.
 */
@QuarkusTest
@TestProfile(LastLayerShardTest.LastLayer.class)
class LastLayerShardTest {

    /** The %test profile's TINY demo, serving block 1 and the head. */
    public static class LastLayer implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("qwen.shard.layers", "1-1");
        }
    }

    @Inject
    ShardRuntime runtime;

    @Test
    void f32AndBf16RowsGiveTheEnginesToken() throws InterruptedException {
        Path dir = runtime.settings().modelDir();
        try (ShardClient client = new ShardClient();
             ShardEngine first = ShardEngine.open(new EngineOptions(dir, "0-0", EngineOptions.KernelSet.VECTOR, 2, 16L << 20));
             ShardEngine whole = ShardEngine.open(new EngineOptions(dir, null, EngineOptions.KernelSet.VECTOR, 2, 16L << 20));
             ShardEngine last = ShardEngine.open(new EngineOptions(dir, "1-1", EngineOptions.KernelSet.VECTOR, 2, 16L << 20))) {
            ShardInfo info = client.blocking.info(InfoRequest.getDefaultInstance());
            assertFalse(info.getHasEmbedding());
            assertTrue(info.getHasHead());
            assertEquals("1-1", info.getLayerRange());

            float[] rows = first.step(List.of(new StepInput("h", 0, Steps.PROMPT, null, 0, false, null))).getFirst().hidden();
            StepOutput expected = whole.step(List.of(new StepInput("w", 0, Steps.PROMPT, null, 0, true, SamplingParams.greedy(0)))).getFirst();
            SequenceResult viaF32 = client.stepOnce(withHidden("f32", Rows.f32(rows))).getResults(0);
            assertEquals(expected.sample().id(), viaF32.getSampled().getTokenId(), "F32 rows are exact: the whole model's token");
            assertEquals(expected.sample().logprob(), viaF32.getSampled().getLogprob(), 1e-5f);

            float[] rounded = rows.clone();
            for (int i = 0; i < rounded.length; i++) {
                rounded[i] = Rows.roundToBf16(rounded[i]);
            }
            StepOutput fromRounded = last.step(List.of(new StepInput("b", 0, Steps.PROMPT, rounded, 0, true, SamplingParams.greedy(0)))).getFirst();
            SequenceResult viaBf16 = client.stepOnce(withHidden("bf16", Rows.bf16(rows))).getResults(0);
            assertEquals(fromRounded.sample().id(), viaBf16.getSampled().getTokenId());
            assertEquals(fromRounded.sample().logprob(), viaBf16.getSampled().getLogprob(), 1e-5f);
            client.blocking.release(ReleaseRequest.newBuilder().addSequenceIds("f32").addSequenceIds("bf16").build());
        }
    }

    @Test
    void badHiddenRowsEndTheStreamWithInvalidArgument() throws InterruptedException {
        float[] rows = new float[Steps.PROMPT.length * Steps.HIDDEN];
        try (ShardClient client = new ShardClient()) {
            expectInvalid(client, Steps.greedy("missing", 0, Steps.PROMPT, 0), "hidden rows are missing");
            expectInvalid(client, withHidden("short", Rows.f32(Arrays.copyOf(rows, rows.length - 1))), "expected " + rows.length * 4);
            expectInvalid(client, withHidden("unspecified", HiddenStates.newBuilder().setData(Rows.f32(rows).getData()).build()),
                    "HIDDEN_ENCODING_UNSPECIFIED");
            assertEquals(0, client.blocking.info(InfoRequest.getDefaultInstance()).getKvBytesInUse());
        }
    }

    private static void expectInvalid(ShardClient client, SequenceStep seq, String mentioned) {
        try (ShardClient.StepCall call = client.step()) {
            call.send(Steps.request(3, seq));
            String description = call.expectEnd(Status.Code.INVALID_ARGUMENT);
            assertTrue(description.contains(mentioned) && description.contains(seq.getSequenceId()),
                    "'" + description + "' should name the sequence and say " + mentioned);
        }
    }

    private static SequenceStep withHidden(String id, HiddenStates hidden) {
        return Steps.greedy(id, 0, Steps.PROMPT, 0).toBuilder().setHidden(hidden).build();
    }
}
