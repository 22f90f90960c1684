package qwen.service.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import qwen.service.model.safetensors.SafeTensorsEdit;
import qwen.service.model.safetensors.SafeTensorsFile;

/** Loading whole and partial models from random checkpoints, and every way a checkpoint can be broken. */
class CheckpointLoaderTest {

    private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final RandomCheckpoint TINY = RandomCheckpoint.tiny();
    private static final int D = TINY.hiddenSize();

    @TempDir
    Path dir;

    private Path single() {
        return TINY.writeTo(dir);
    }

    private Path file() {
        return dir.resolve(ModelDirectory.SINGLE_FILE);
    }

    @ParameterizedTest
    @CsvSource({"BF16, 1", "F16, 1", "F32, 1", "BF16, 3", "F32, 2"})
    void loadsWholeModelAsWritten(DType dtype, int shards) throws Exception {
        RandomCheckpoint rc = TINY.withDtype(dtype).withShards(shards);
        rc.writeTo(dir);
        try (ShardWeights w = CheckpointLoader.load(dir, LayerRange.whole(4))) {
            assertEquals(rc.config(), w.config());
            assertEquals(4, w.layers().size());
            assertEquals(List.of(0, 1, 2, 3), w.layers().stream().map(LayerWeights::index).toList());
            LayerWeights l3 = w.layers().get(3);
            assertEquals(dtype, l3.cAttn().dtype());
            assertEquals(3 * D, l3.cAttn().rows());
            assertEquals(D, l3.cAttn().cols());
            assertEquals(TINY.ffnDim(), l3.w2().rows());
            assertEquals(TINY.ffnDim(), l3.mlpCProj().cols());
            assertEquals(3 * D, l3.cAttnBias().length);
            assertEquals(TINY.vocabSize(), w.wte().rows());
            assertEquals(TINY.vocabSize(), w.lmHead().rows());
            for (float v : l3.ln1()) {
                assertTrue(v > 0.89f && v < 1.11f, "ln_1 weight " + v + " should be about 1");
            }
            for (float v : l3.cAttnBias()) {
                assertTrue(Math.abs(v) < 0.051f, "bias " + v + " should be small");
            }
            assertEquals(D, w.lnF().length);
            assertTrue(w.bytesPerToken() > 0);
        }
        if (shards > 1) {
            assertEquals(shards, ModelDirectory.open(dir).weightFiles().size());
        }
    }

    @Test
    void matricesAreViewsOfTheFileAndClosingUnmapsThem() throws Exception {
        single();
        ShardWeights w = CheckpointLoader.load(dir, LayerRange.whole(4));
        MemorySegment lmHead = w.lmHead().data();
        try (SafeTensorsFile st = SafeTensorsFile.open(file())) {
            assertEquals(-1, st.data(CheckpointLayout.LM_HEAD).mismatch(lmHead));
        }
        assertTrue(lmHead.isReadOnly());
        w.close();
        assertThrows(IllegalStateException.class, () -> lmHead.get(ValueLayout.JAVA_BYTE, 0));
    }

    @Test
    void bf16ElementsReadBackAsWritten() throws Exception {
        single();
        String cAttn = CheckpointLayout.block(1, CheckpointLayout.C_ATTN);
        String ln1 = CheckpointLayout.block(1, CheckpointLayout.LN_1);
        int row = 70;
        int col = 5;
        float matrixValue = -0.3359375f;
        float normValue = 1.0625f;
        SafeTensorsEdit.overwrite(file(), SafeTensorsEdit.position(file(), cAttn) + 2L * (row * D + col), bf16(matrixValue));
        SafeTensorsEdit.overwrite(file(), SafeTensorsEdit.position(file(), ln1) + 2L * 9, bf16(normValue));
        try (ShardWeights w = CheckpointLoader.load(dir, LayerRange.whole(4))) {
            Matrix m = w.layers().get(1).cAttn();
            short bits = m.data().getAtIndex(SHORT, (long) row * m.cols() + col);
            assertEquals(matrixValue, Float.intBitsToFloat((bits & 0xffff) << 16));
            assertEquals(normValue, w.layers().get(1).ln1()[9]);
        }
    }

    @Test
    void firstHalfWithoutHead() throws Exception {
        TINY.withShards(3).writeTo(dir);
        keepOnlyFilesFor(LayerRange.parse("0-1", 4));
        try (ShardWeights w = CheckpointLoader.load(dir, LayerRange.parse("0-1", 4))) {
            assertNotNull(w.wte());
            assertNull(w.lnF());
            assertNull(w.lmHead());
            assertEquals(List.of(0, 1), w.layers().stream().map(LayerWeights::index).toList());
        }
    }

    @Test
    void secondHalfWithHead() throws Exception {
        TINY.withShards(3).writeTo(dir);
        keepOnlyFilesFor(LayerRange.parse("2-3", 4));
        try (ShardWeights w = CheckpointLoader.load(dir, LayerRange.parse("2-3", 4))) {
            assertNull(w.wte());
            assertNotNull(w.lnF());
            assertNotNull(w.lmHead());
            assertEquals(List.of(2, 3), w.layers().stream().map(LayerWeights::index).toList());
        }
    }

    /** Deletes every shard file the range does not need, proving the loader never opens them. */
    private void keepOnlyFilesFor(LayerRange range) throws IOException {
        ModelDirectory model = ModelDirectory.open(dir);
        Set<Path> needed = CheckpointLayout.shapes(model.config(), range).keySet().stream()
                .map(model::fileOf).collect(Collectors.toSet());
        assertTrue(needed.size() < model.weightFiles().size(), "the range should not need every shard file");
        for (Path p : model.weightFiles()) {
            if (!needed.contains(p)) {
                Files.writeString(p, "not a safetensors file");
            }
        }
    }

    @Test
    void sameSeedSameBytesOtherSeedOtherBytes() throws IOException {
        byte[] a = Files.readAllBytes(TINY.writeTo(dir.resolve("a")).resolve(ModelDirectory.SINGLE_FILE));
        byte[] b = Files.readAllBytes(TINY.writeTo(dir.resolve("b")).resolve(ModelDirectory.SINGLE_FILE));
        byte[] c = Files.readAllBytes(TINY.withSeed(2).writeTo(dir.resolve("c")).resolve(ModelDirectory.SINGLE_FILE));
        assertArrayEquals(a, b);
        assertEquals(a.length, c.length);
        assertTrue(ByteBuffer.wrap(a).mismatch(ByteBuffer.wrap(c)) >= 0);
    }

    @Test
    void ignoresBuffersHfIgnores() throws Exception {
        single();
        long at = SafeTensorsEdit.dataBytes(file());
        SafeTensorsEdit.rewriteHeader(file(), h -> addTensor(h, "transformer.h.0.attn.rotary_emb.inv_freq", "F32", 4, at),
                new byte[16]);
        try (ShardWeights w = CheckpointLoader.load(dir, LayerRange.whole(4))) {
            assertEquals(4, w.layers().size());
        }
    }

    // ---- broken checkpoints: each message names the file and the tensor ----

    @Test
    void missingTensor() throws IOException {
        single();
        String name = CheckpointLayout.block(2, CheckpointLayout.W1);
        SafeTensorsEdit.rewriteHeader(file(), h -> h.remove(name));
        assertLoadFails(LayerRange.whole(4), "model.safetensors", "'" + name + "'", "missing");
    }

    @Test
    void tensorMissingFromWeightMap() throws IOException {
        TINY.withShards(2).writeTo(dir);
        Path index = dir.resolve(ModelDirectory.INDEX);
        ObjectNode json = (ObjectNode) new ObjectMapper().readTree(index.toFile());
        ((ObjectNode) json.get("weight_map")).remove(CheckpointLayout.LN_F);
        Files.writeString(index, json.toString());
        assertLoadFails(LayerRange.whole(4), ModelDirectory.INDEX, "'" + CheckpointLayout.LN_F + "'", "weight_map");
    }

    @Test
    void weightMapNamesAbsentFile() throws IOException {
        TINY.withShards(2).writeTo(dir);
        Files.delete(dir.resolve("model-00002-of-00002.safetensors"));
        assertLoadFails(LayerRange.whole(4), ModelDirectory.INDEX, "model-00002-of-00002.safetensors");
    }

    @Test
    void extraTensor() throws IOException {
        single();
        long at = SafeTensorsEdit.dataBytes(file());
        SafeTensorsEdit.rewriteHeader(file(), h -> addTensor(h, "transformer.h.1.mlp.gate.weight", "BF16", 8, at),
                new byte[16]);
        assertLoadFails(LayerRange.parse("0-0", 4), "model.safetensors", "'transformer.h.1.mlp.gate.weight'", "unexpected");
    }

    @Test
    void extraBlockBeyondNumLayers() throws IOException {
        single();
        long at = SafeTensorsEdit.dataBytes(file());
        SafeTensorsEdit.rewriteHeader(file(), h -> addTensor(h, "transformer.h.4.ln_1.weight", "BF16", D, at),
                new byte[2 * D]);
        assertLoadFails(LayerRange.whole(4), "model.safetensors", "'transformer.h.4.ln_1.weight'", "unexpected");
    }

    @Test
    void wrongShape() throws IOException {
        single();
        String name = CheckpointLayout.block(1, CheckpointLayout.LN_2);
        SafeTensorsEdit.rewriteHeader(file(), h -> ((ArrayNode) h.get(name).get("shape")).removeAll().add(D / 2).add(2));
        assertLoadFails(LayerRange.whole(4), "model.safetensors", "'" + name + "'",
                "shape [" + D / 2 + ", 2], expected [" + D + "]");
    }

    @Test
    void wrongMatrixShapeForConfig() throws IOException {
        single();
        String name = CheckpointLayout.block(0, CheckpointLayout.MLP_C_PROJ);
        SafeTensorsEdit.rewriteHeader(file(), h -> ((ArrayNode) h.get(name).get("shape")).removeAll()
                .add(TINY.ffnDim()).add(D));
        assertLoadFails(LayerRange.whole(4), "model.safetensors", "'" + name + "'",
                "expected [" + D + ", " + TINY.ffnDim() + "]");
    }

    @Test
    void unknownDtypeI8() throws IOException {
        single();
        String name = CheckpointLayout.block(0, CheckpointLayout.LN_1);
        SafeTensorsEdit.rewriteHeader(file(), h -> retype(h, name, "I8", 2 * D));
        assertLoadFails(LayerRange.whole(4), "model.safetensors", "'" + name + "'", "dtype I8");
    }

    @Test
    void unknownDtypeF64() throws IOException {
        single();
        String name = CheckpointLayout.LM_HEAD;
        SafeTensorsEdit.rewriteHeader(file(), h -> retype(h, name, "F64", (long) TINY.vocabSize() * D / 4));
        assertLoadFails(LayerRange.whole(4), "model.safetensors", "'" + name + "'", "dtype F64");
    }

    @Test
    void truncatedFile() throws IOException {
        single();
        SafeTensorsEdit.truncate(file(), 100);
        assertLoadFails(LayerRange.whole(4), "model.safetensors", "'" + CheckpointLayout.LM_HEAD + "'", "truncated");
    }

    @Test
    void malformedHeader() throws IOException {
        single();
        SafeTensorsEdit.overwrite(file(), 8, "{\"transformer.wte.weight\": {\"dtype\": ".getBytes());
        assertLoadFails(LayerRange.whole(4), "model.safetensors", "not valid JSON");
    }

    @Test
    void headerLengthPastTheEnd() throws IOException {
        single();
        SafeTensorsEdit.setHeaderLength(file(), Files.size(file()));
        assertLoadFails(LayerRange.whole(4), "model.safetensors", "header length", "past the end");
    }

    @Test
    void rangeOutsideTheModel() {
        single();
        assertLoadFails(new LayerRange(2, 6, false, true), "config.json", "2-5", "4 blocks (0-3)");
    }

    @Test
    void notQwen1() throws IOException {
        single();
        Path config = dir.resolve(ModelDirectory.CONFIG);
        ObjectNode json = (ObjectNode) new ObjectMapper().readTree(config.toFile());
        json.put("model_type", "llama");
        json.putArray("architectures").add("LlamaForCausalLM");
        Files.writeString(config, json.toString());
        assertLoadFails(LayerRange.whole(4), "config.json", "model_type 'llama'", "not a Qwen-1 model");
    }

    @Test
    void noWeightFiles() throws IOException {
        single();
        Files.delete(file());
        assertLoadFails(LayerRange.whole(4), dir.getFileName().toString(), "no model.safetensors");
    }

    private static byte[] bf16(float v) {
        short bits = (short) (Float.floatToRawIntBits(v) >>> 16);
        return ByteBuffer.allocate(2).order(ByteOrder.LITTLE_ENDIAN).putShort(bits).array();
    }

    private static void addTensor(ObjectNode header, String name, String dtype, long elements, long at) {
        ObjectNode t = header.putObject(name);
        t.put("dtype", dtype);
        t.putArray("shape").add(elements);
        long bytes = elements * (dtype.equals("F32") ? 4 : 2);
        t.putArray("data_offsets").add(at).add(at + bytes);
    }

    /** Gives a tensor another dtype tag and a 1-D shape covering the same bytes. */
    private static void retype(ObjectNode header, String name, String dtype, long elements) {
        ObjectNode t = (ObjectNode) header.get(name);
        t.put("dtype", dtype);
        ((ArrayNode) t.get("shape")).removeAll().add(elements);
    }

    private void assertLoadFails(LayerRange range, String... fragments) {
        CheckpointException e = assertThrows(CheckpointException.class, () -> CheckpointLoader.load(dir, range).close());
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), "'" + f + "' not in: " + e.getMessage());
        }
    }
}
