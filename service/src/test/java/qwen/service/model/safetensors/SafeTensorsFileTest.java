package qwen.service.model.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import qwen.service.model.CheckpointException;
import qwen.service.model.DType;
import qwen.service.model.safetensors.SafeTensorsWriter.TensorSpec;

/** Writer to reader round trips, and each way a safetensors file can be broken. */
class SafeTensorsFileTest {

    private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @TempDir
    Path tmp;

    /** Element i of tensor t, as written by {@link #pattern}. Exactly representable in BF16 and F16. */
    private static float value(int t, long i) {
        return (t + 1) * 0.5f - (i % 13) * 0.125f;
    }

    private static TensorSpec pattern(int t, String name, DType dtype, long... shape) {
        return new TensorSpec(name, dtype, shape, seg -> {
            long n = seg.byteSize() / dtype.bytes();
            for (long i = 0; i < n; i++) {
                float v = value(t, i);
                switch (dtype) {
                    case F32 -> seg.setAtIndex(FLOAT, i, v);
                    case F16 -> seg.setAtIndex(SHORT, i, Float.floatToFloat16(v));
                    case BF16 -> seg.setAtIndex(SHORT, i, (short) (Float.floatToRawIntBits(v) >>> 16));
                }
            }
        });
    }

    private static float read(MemorySegment seg, DType dtype, long i) {
        return switch (dtype) {
            case F32 -> seg.getAtIndex(FLOAT, i);
            case F16 -> Float.float16ToFloat(seg.getAtIndex(SHORT, i));
            case BF16 -> Float.intBitsToFloat((seg.getAtIndex(SHORT, i) & 0xffff) << 16);
            case Q8_0, Q4_0, Q5_0, Q4_1, Q5_1, Q4_K, Q5_K, Q6_K, Q4_G128, Q4_0_R16, Q8_0_R16 -> throw new IllegalArgumentException("not a safetensors dtype");
        };
    }

    private Path writeSample() {
        Path file = tmp.resolve("sample.safetensors");
        SafeTensorsWriter.write(file, List.of(
                pattern(0, "a.weight", DType.BF16, 3, 5),
                pattern(1, "b.bias", DType.F32, 7),
                pattern(2, "c.weight", DType.F16, 2, 2)));
        return file;
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "F16", "BF16"})
    void roundTripsEveryDtype(DType dtype) {
        Path file = tmp.resolve("t.safetensors");
        SafeTensorsWriter.write(file, List.of(
                pattern(0, "m", dtype, 6, 10), pattern(1, "v", dtype, 9), pattern(2, "empty", dtype, 0)));
        try (SafeTensorsFile st = SafeTensorsFile.open(file)) {
            assertEquals(List.of("m", "v", "empty"), List.copyOf(st.tensors().keySet()));
            TensorInfo m = st.info("m");
            assertEquals(dtype, m.dtype());
            assertArrayEquals(new long[] {6, 10}, m.shape());
            assertEquals(60L * dtype.bytes(), st.data("m").byteSize());
            for (long i = 0; i < 60; i++) {
                assertEquals(value(0, i), read(st.data("m"), dtype, i), "m[" + i + "]");
            }
            for (long i = 0; i < 9; i++) {
                assertEquals(value(1, i), read(st.data("v"), dtype, i), "v[" + i + "]");
            }
            assertEquals(0, st.data("empty").byteSize());
            assertTrue(st.data("m").isReadOnly());
            assertEquals(Map.of("format", "pt"), st.metadata());
        }
    }

    @Test
    void headerIsSpacePaddedSoDataIsEightByteAligned() throws IOException {
        Path file = writeSample();
        byte[] bytes = Files.readAllBytes(file);
        long headerBytes = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, (8 + headerBytes) % 8);
        String header = new String(bytes, 8, (int) headerBytes, StandardCharsets.UTF_8);
        String json = header.stripTrailing();
        assertTrue(header.startsWith("{") && json.endsWith("}"), header);
        assertTrue(header.substring(json.length()).chars().allMatch(c -> c == ' '), "padding must be spaces");
    }

    @Test
    void bf16ElementReadsBackAsWritten() {
        Path file = tmp.resolve("bf16.safetensors");
        float[] written = {1.5f, -0.0078125f, 3.140625f, -65280f};
        SafeTensorsWriter.write(file, List.of(new TensorSpec("w", DType.BF16, new long[] {2, 2}, seg -> {
            for (int i = 0; i < written.length; i++) {
                seg.setAtIndex(SHORT, i, (short) (Float.floatToRawIntBits(written[i]) >>> 16));
            }
        })));
        try (SafeTensorsFile st = SafeTensorsFile.open(file)) {
            for (int i = 0; i < written.length; i++) {
                assertEquals(written[i], read(st.data("w"), DType.BF16, i));
            }
        }
    }

    /** A tensor past the 2 GiB mark (sparse file: only the touched pages take disk space). */
    @Test
    void mapsFilesLargerThanTwoGiB() {
        Path file = tmp.resolve("big.safetensors");
        long big = (1L << 29) + 16;
        SafeTensorsWriter.write(file, List.of(
                new TensorSpec("big", DType.F32, new long[] {big}, seg -> { }),
                pattern(3, "tail", DType.F32, 4)));
        try (SafeTensorsFile st = SafeTensorsFile.open(file)) {
            assertTrue(st.info("tail").begin() > Integer.MAX_VALUE);
            for (int i = 0; i < 4; i++) {
                assertEquals(value(3, i), read(st.data("tail"), DType.F32, i));
            }
        }
    }

    @Test
    void unknownDtypeTagIsReadButHasNoDType() throws IOException {
        Path file = writeSample();
        SafeTensorsEdit.rewriteHeader(file, h -> {
            ObjectNode b = (ObjectNode) h.get("b.bias");
            b.put("dtype", "I8");
            ((ArrayNode) b.get("shape")).removeAll().add(28);
        });
        try (SafeTensorsFile st = SafeTensorsFile.open(file)) {
            assertNull(st.info("b.bias").dtype());
            assertEquals("I8", st.info("b.bias").dtypeTag());
        }
    }

    @Test
    void fileShorterThanEightBytes() throws IOException {
        Path file = tmp.resolve("short.safetensors");
        Files.write(file, new byte[] {1, 2, 3});
        assertFails(file, "short.safetensors", "too short");
    }

    @Test
    void headerLengthPastTheEnd() throws IOException {
        Path file = writeSample();
        SafeTensorsEdit.setHeaderLength(file, Files.size(file) + 100);
        assertFails(file, "sample.safetensors", "header length", "past the end");
    }

    @Test
    void malformedHeaderJson() throws IOException {
        Path file = writeSample();
        SafeTensorsEdit.overwrite(file, 8, "{\"a.weight\": [1, 2".getBytes(StandardCharsets.UTF_8));
        assertFails(file, "sample.safetensors", "not valid JSON");
    }

    @Test
    void headerThatIsNotAnObject() throws IOException {
        Path file = writeSample();
        byte[] header = "[]".getBytes(StandardCharsets.UTF_8);
        SafeTensorsEdit.overwrite(file, 8, header);
        // Blank out the rest of the original header so the JSON is just [].
        long length = Files.size(file) - SafeTensorsEdit.dataBytes(file) - 8;
        byte[] spaces = new byte[(int) length - header.length];
        Arrays.fill(spaces, (byte) ' ');
        SafeTensorsEdit.overwrite(file, 8 + header.length, spaces);
        assertFails(file, "sample.safetensors", "JSON object");
    }

    @Test
    void dataOffsetsOutOfTheFile() throws IOException {
        Path file = writeSample();
        SafeTensorsEdit.truncate(file, 4);
        assertFails(file, "sample.safetensors", "'c.weight'", "truncated");
    }

    @Test
    void offsetsInconsistentWithDtypeAndShape() throws IOException {
        Path file = writeSample();
        SafeTensorsEdit.rewriteHeader(file, h -> ((ArrayNode) h.get("a.weight").get("shape")).set(1, 4));
        assertFails(file, "sample.safetensors", "'a.weight'", "needs 24");
    }

    @Test
    void overlappingTensors() throws IOException {
        Path file = writeSample();
        SafeTensorsEdit.rewriteHeader(file, h -> {
            ArrayNode offsets = (ArrayNode) h.get("b.bias").get("data_offsets");
            long begin = offsets.get(0).asLong() - 2;
            offsets.removeAll().add(begin).add(begin + 28);
        });
        assertFails(file, "sample.safetensors", "'b.bias'", "overlaps", "'a.weight'");
    }

    @Test
    void entryWithoutOffsets() throws IOException {
        Path file = writeSample();
        SafeTensorsEdit.rewriteHeader(file, h -> ((ObjectNode) h.get("c.weight")).remove("data_offsets"));
        assertFails(file, "sample.safetensors", "'c.weight'", "data_offsets");
    }

    @Test
    void missingTensorNamesFile() {
        Path file = writeSample();
        try (SafeTensorsFile st = SafeTensorsFile.open(file)) {
            CheckpointException e = assertThrows(CheckpointException.class, () -> st.data("nope"));
            assertTrue(e.getMessage().contains("sample.safetensors") && e.getMessage().contains("'nope'"), e.getMessage());
        }
    }

    private static void assertFails(Path file, String... fragments) {
        CheckpointException e = assertThrows(CheckpointException.class, () -> SafeTensorsFile.open(file).close());
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), "'" + f + "' not in: " + e.getMessage());
        }
    }
}
