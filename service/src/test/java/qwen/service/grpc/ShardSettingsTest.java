package qwen.service.grpc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.OptionalInt;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import qwen.service.config.DemoCheckpoint;
import qwen.service.config.DemoModel;
import qwen.service.config.ShardConfig;
import qwen.service.config.ShardSettings;
import qwen.service.engine.EngineOptions;
import qwen.service.model.RandomCheckpoint;

/** qwen.shard.* settings: defaults, and start-up failures that name the key at fault. */
class ShardSettingsTest {

    /** A ShardConfig with the documented defaults; tests change one value at a time. */
    record Config(Optional<Path> modelDir, DemoModel demoModel, Optional<Path> demoDir, Optional<String> layers,
            OptionalInt threads, EngineOptions.KernelSet kernels, long kvBudgetMb, int maxStepTokens,
            Optional<String> modelId) implements ShardConfig {

        @Override
        public Optional<String> device() {
            return Optional.empty();
        }

        @Override
        public boolean cudaGraphs() {
            return true;
        }

        @Override
        public boolean tensorCores() {
            return true;
        }

        static Config demo(Path dir) {
            return new Config(Optional.empty(), DemoModel.TINY, Optional.of(dir), Optional.empty(), OptionalInt.empty(),
                    EngineOptions.KernelSet.VECTOR, 1024, 512, Optional.empty());
        }
    }

    @TempDir
    Path tmp;

    @Test
    void demoDefaults() {
        ShardSettings s = ShardSettings.resolve(Config.demo(tmp));
        assertTrue(s.randomWeights());
        assertEquals("qwen-demo-tiny", s.modelId());
        assertEquals(tmp.toAbsolutePath(), s.modelDir());
        assertEquals(Runtime.getRuntime().availableProcessors(), s.engine().threads());
        assertEquals(1024L << 20, s.engine().kvBudgetBytes());
        assertEquals(512, s.maxStepTokens());
        assertTrue(s.device().cudaGraphs(), "CUDA graphs on by default where the device has them");
        assertTrue(s.device().tensorCores(), "tensor cores on by default where the device has them");
    }

    @Test
    void aModelDirWinsOverTheDemoAndNamesTheModel() {
        Config c = Config.demo(tmp);
        Path model = tmp.resolve("Qwen-1_8B-Chat");
        ShardSettings s = ShardSettings.resolve(new Config(Optional.of(model), c.demoModel(), c.demoDir(), c.layers(), c.threads(),
                c.kernels(), c.kvBudgetMb(), c.maxStepTokens(), c.modelId()));
        assertFalse(s.randomWeights());
        assertEquals("Qwen-1_8B-Chat", s.modelId());
    }

    @Test
    void failuresNameTheKey() {
        Config c = Config.demo(tmp);
        assertMessage("qwen.shard.model-dir", new Config(Optional.empty(), DemoModel.NONE, c.demoDir(), c.layers(), c.threads(),
                c.kernels(), c.kvBudgetMb(), c.maxStepTokens(), c.modelId()));
        assertMessage("qwen.shard.layers", new Config(c.modelDir(), c.demoModel(), c.demoDir(), Optional.of("0..3"), c.threads(),
                c.kernels(), c.kvBudgetMb(), c.maxStepTokens(), c.modelId()));
        assertMessage("qwen.shard.threads", new Config(c.modelDir(), c.demoModel(), c.demoDir(), c.layers(), OptionalInt.of(0),
                c.kernels(), c.kvBudgetMb(), c.maxStepTokens(), c.modelId()));
        assertMessage("qwen.shard.kv-budget-mb", new Config(c.modelDir(), c.demoModel(), c.demoDir(), c.layers(), c.threads(),
                c.kernels(), 0, c.maxStepTokens(), c.modelId()));
        assertMessage("qwen.shard.max-step-tokens", new Config(c.modelDir(), c.demoModel(), c.demoDir(), c.layers(), c.threads(),
                c.kernels(), c.kvBudgetMb(), 0, c.modelId()));
    }

    @Test
    void theDemoIsNotWrittenOverSomeoneElsesFiles() throws Exception {
        Files.writeString(tmp.resolve("config.json"), "{}");
        RandomCheckpoint tiny = DemoModel.TINY.checkpoint();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> DemoCheckpoint.prepare(tiny, tmp));
        assertTrue(e.getMessage().contains("qwen.shard.demo-dir"), e.getMessage());
        assertEquals("{}", Files.readString(tmp.resolve("config.json")));
    }

    private static void assertMessage(String key, ShardConfig config) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ShardSettings.resolve(config));
        assertTrue(e.getMessage().contains(key), "'" + e.getMessage() + "' should name " + key);
    }
}
