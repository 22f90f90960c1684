package qwen.service.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Iterator;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The files a random checkpoint directory holds besides the weights. */
class RandomCheckpointTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    @Test
    void writesEveryQwen1ConfigField() throws IOException {
        RandomCheckpoint.tiny().writeTo(dir);
        JsonNode c = JSON.readTree(dir.resolve("config.json").toFile());
        assertEquals("qwen", c.get("model_type").asText());
        assertEquals("QWenLMHeadModel", c.get("architectures").get(0).asText());
        assertEquals(192, c.get("intermediate_size").asInt());
        assertEquals(16, c.get("kv_channels").asInt());
        assertEquals(1e-6, c.get("layer_norm_epsilon").asDouble());
        assertFalse(c.get("tie_word_embeddings").asBoolean());
        assertEquals("bfloat16", c.get("torch_dtype").asText());
        Set<String> real = fieldNames(JSON.readTree(PublishedConfigs.QWEN_1_8B_CHAT));
        assertEquals(real, fieldNames(c));
    }

    @Test
    void writesGenerationConfig() throws IOException {
        RandomCheckpoint.tiny().writeTo(dir);
        JsonNode g = JSON.readTree(dir.resolve("generation_config.json").toFile());
        assertEquals("chatml", g.get("chat_format").asText());
        assertEquals(151643, g.get("eos_token_id").asInt());
        assertEquals(6144, g.get("max_window_size").asInt());
        assertEquals(0, g.get("top_k").asInt());
        assertEquals(0.8, g.get("top_p").asDouble());
        assertEquals(1.1, g.get("repetition_penalty").asDouble());
    }

    @Test
    void shardedIndexCarriesTotalSizeAndEveryTensor() throws IOException {
        RandomCheckpoint rc = RandomCheckpoint.tiny().withShards(3);
        rc.writeTo(dir);
        JsonNode index = JSON.readTree(dir.resolve(ModelDirectory.INDEX).toFile());
        long expected = 0;
        for (long[] shape : CheckpointLayout.shapes(rc.config()).values()) {
            long n = rc.dtype().bytes();
            for (long d : shape) {
                n *= d;
            }
            expected += n;
        }
        assertEquals(expected, index.get("metadata").get("total_size").asLong());
        assertEquals(CheckpointLayout.shapes(rc.config()).keySet(), fieldNames(index.get("weight_map")));
        for (int s = 1; s <= 3; s++) {
            assertTrue(Files.exists(dir.resolve("model-0000" + s + "-of-00003.safetensors")));
        }
        assertFalse(Files.exists(dir.resolve(ModelDirectory.SINGLE_FILE)));
    }

    @Test
    void rewritingADirectoryReplacesOldWeightFiles() {
        RandomCheckpoint.tiny().withShards(2).writeTo(dir);
        RandomCheckpoint.tiny().writeTo(dir);
        assertFalse(Files.exists(dir.resolve(ModelDirectory.INDEX)));
        assertFalse(ModelDirectory.open(dir).sharded());
    }

    @Test
    void copiesTheTokenizer() throws IOException {
        Path tiktoken = dir.resolve("source.tiktoken");
        Files.writeString(tiktoken, "IQ== 0\n");
        RandomCheckpoint.tiny().withTiktoken(tiktoken).writeTo(dir.resolve("model"));
        assertEquals("IQ== 0\n", Files.readString(dir.resolve("model/qwen.tiktoken")));
    }

    private static Set<String> fieldNames(JsonNode node) {
        Set<String> names = new HashSet<>();
        for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) {
            names.add(it.next());
        }
        return names;
    }
}
