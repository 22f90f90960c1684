package qwen.service.grpc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import jakarta.inject.Inject;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import qwen.proto.shard.v1.HiddenEncoding;
import qwen.proto.shard.v1.InfoRequest;
import qwen.proto.shard.v1.ReleaseRequest;
import qwen.proto.shard.v1.SequenceResult;
import qwen.proto.shard.v1.ShardInfo;
import qwen.proto.shard.v1.StepRequest;
import qwen.service.engine.EngineOptions;
import qwen.service.engine.ShardEngine;
import qwen.service.engine.StepInput;
import qwen.service.engine.StepOutput;
import qwen.service.sampling.SamplingParams;

/**
 * A first shard (layers "0-0" of the 2-layer TINY model) over gRPC: its hidden rows, fed to an
 * engine holding layer 1 and the head, give the whole model's token. Checks the output encoding
 * end to end.
 */
@QuarkusTest
@TestProfile(FirstLayerShardTest.FirstLayer.class)
class FirstLayerShardTest {

    /** The %test profile's TINY demo, serving only block 0 and the embedding. */
    public static class FirstLayer implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("qwen.shard.layers", "0-0");
        }
    }

    @Inject
    ShardRuntime runtime;

    @Test
    void infoDescribesTheFirstShard() throws InterruptedException {
        try (ShardClient client = new ShardClient()) {
            ShardInfo info = client.blocking.info(InfoRequest.getDefaultInstance());
            assertEquals(0, info.getFirstLayer());
            assertEquals(1, info.getEndLayer());
            assertEquals("0-0", info.getLayerRange());
            assertTrue(info.getHasEmbedding());
            assertFalse(info.getHasHead());
            assertEquals(2L * 64 * 4, info.getKvBytesPerToken(), "1 layer x (K, V) x 64 floats");
        }
    }

    @Test
    void hiddenRowsFedToTheLastLayerGiveTheWholeModelsToken() throws InterruptedException {
        int[] prompt = Steps.PROMPT;
        Path dir = runtime.settings().modelDir();
        try (ShardClient client = new ShardClient();
             ShardEngine whole = ShardEngine.open(new EngineOptions(dir, null, EngineOptions.KernelSet.VECTOR, 2, 16L << 20));
             ShardEngine last = ShardEngine.open(new EngineOptions(dir, "1-1", EngineOptions.KernelSet.VECTOR, 2, 16L << 20))) {
            SequenceResult f32 = client.stepOnce(Steps.greedy("split", 0, prompt, 0)).getResults(0);
            assertEquals(SequenceResult.OutcomeCase.HIDDEN, f32.getOutcomeCase(), "a shard without the head returns rows, "
                    + "even when sample is set: " + f32);
            assertEquals(HiddenEncoding.HIDDEN_ENCODING_F32, f32.getHidden().getEncoding(), "UNSPECIFIED output means F32");
            assertEquals(prompt.length * 64 * 4, f32.getHidden().getData().size());
            assertEquals(prompt.length, f32.getHeldPositions());
            float[] rows = Rows.decode(f32.getHidden());

            StepOutput expected = whole.step(List.of(new StepInput("w", 0, prompt, null, 0, true, SamplingParams.greedy(0)))).getFirst();
            StepOutput split = last.step(List.of(new StepInput("s", 0, prompt, rows, 0, true, SamplingParams.greedy(0)))).getFirst();
            assertEquals(expected.sample().id(), split.sample().id(), "layer 0 over gRPC, then layer 1 + head");
            assertEquals(expected.sample().logprob(), split.sample().logprob(), 1e-5f);

            // Recompute from 0 with BF16 output: the same rows, rounded to bfloat16.
            StepRequest again = StepRequest.newBuilder().setStepId(2).setOutputEncoding(HiddenEncoding.HIDDEN_ENCODING_BF16)
                    .addSequences(Steps.greedy("split", 0, prompt, 0)).build();
            SequenceResult bf16;
            try (ShardClient.StepCall call = client.step()) {
                call.send(again);
                bf16 = call.next().getResults(0);
            }
            assertEquals(HiddenEncoding.HIDDEN_ENCODING_BF16, bf16.getHidden().getEncoding());
            assertEquals(prompt.length * 64 * 2, bf16.getHidden().getData().size());
            float[] rounded = Rows.decode(bf16.getHidden());
            for (int i = 0; i < rows.length; i++) {
                assertEquals(Rows.roundToBf16(rows[i]), rounded[i], "element " + i + " of " + rows[i]);
            }
            client.blocking.release(ReleaseRequest.newBuilder().addSequenceIds("split").build());
        }
    }
}
