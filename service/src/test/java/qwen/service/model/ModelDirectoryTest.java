package qwen.service.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** config.json parsing and weight-file discovery. */
class ModelDirectoryTest {

    @TempDir
    Path dir;

    @Test
    void readsTheRealQwen18BChatConfig() throws IOException {
        Path config = dir.resolve("config.json");
        Files.writeString(config, PublishedConfigs.QWEN_1_8B_CHAT);
        assertEquals(RandomCheckpoint.qwen18B().config(), ModelDirectory.readConfig(config));
    }

    @Test
    void randomCheckpointConfigReadsBack() {
        RandomCheckpoint rc = RandomCheckpoint.tiny();
        rc.writeTo(dir);
        ModelDirectory model = ModelDirectory.open(dir);
        assertEquals(rc.config(), model.config());
        assertEquals(rc.ffnDim(), model.config().ffnDim());
        assertFalse(model.sharded());
    }

    @Test
    void flagsDefaultToTrue() throws IOException {
        QwenConfig c = edited(j -> {
            j.remove("use_dynamic_ntk");
            j.put("use_logn_attn", false);
        });
        assertTrue(c.useDynamicNtk());
        assertFalse(c.useLognAttn());
    }

    @Test
    void architectureAloneIdentifiesQwen1() throws IOException {
        assertEquals(64, edited(j -> j.remove("model_type")).hiddenSize());
    }

    @Test
    void rejectsOtherModelFamilies() {
        assertConfigFails(j -> {
            j.put("model_type", "qwen2");
            j.putArray("architectures").add("Qwen2ForCausalLM");
        }, "model_type 'qwen2'", "Qwen2ForCausalLM", "not a Qwen-1 model");
    }

    @Test
    void rejectsMissingField() {
        assertConfigFails(j -> j.remove("kv_channels"), "\"kv_channels\" is missing");
    }

    @Test
    void rejectsNonIntegerField() {
        assertConfigFails(j -> j.put("vocab_size", "512"), "vocab_size must be a positive integer");
    }

    @Test
    void rejectsPartialRotary() {
        assertConfigFails(j -> j.put("rotary_pct", 0.5), "rotary_pct is 0.5");
    }

    @Test
    void rejectsHeadsThatDoNotTileHidden() {
        assertConfigFails(j -> j.put("kv_channels", 8), "kv_channels 8 x num_attention_heads 4 = 32 differs from hidden_size 64");
    }

    @Test
    void rejectsOddIntermediateSize() {
        assertConfigFails(j -> j.put("intermediate_size", 191), "intermediate_size 191 is odd");
    }

    @Test
    void rejectsConfigThatIsNotJson() throws IOException {
        RandomCheckpoint.tiny().writeTo(dir);
        Files.writeString(dir.resolve("config.json"), "{ hidden_size: 1");
        CheckpointException e = assertThrows(CheckpointException.class, () -> ModelDirectory.open(dir));
        assertTrue(e.getMessage().contains("config.json") && e.getMessage().contains("not valid JSON"), e.getMessage());
    }

    @Test
    void shardedDirectoryFollowsWeightMap() {
        RandomCheckpoint.tiny().withShards(2).writeTo(dir);
        ModelDirectory model = ModelDirectory.open(dir);
        assertTrue(model.sharded());
        assertEquals(2, model.weightFiles().size());
        assertEquals(dir.toAbsolutePath().resolve("model-00002-of-00002.safetensors"), model.fileOf(CheckpointLayout.LM_HEAD));
        assertEquals(dir.toAbsolutePath().resolve("model-00001-of-00002.safetensors"), model.fileOf(CheckpointLayout.WTE));
    }

    private QwenConfig edited(Consumer<ObjectNode> edit) throws IOException {
        RandomCheckpoint.tiny().writeTo(dir);
        Path config = dir.resolve(ModelDirectory.CONFIG);
        ObjectNode json = (ObjectNode) new ObjectMapper().readTree(config.toFile());
        edit.accept(json);
        Files.writeString(config, json.toString());
        return ModelDirectory.readConfig(config);
    }

    private void assertConfigFails(Consumer<ObjectNode> edit, String... fragments) {
        CheckpointException e = assertThrows(CheckpointException.class, () -> edited(edit));
        assertTrue(e.getMessage().contains("config.json"), e.getMessage());
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), "'" + f + "' not in: " + e.getMessage());
        }
    }
}
