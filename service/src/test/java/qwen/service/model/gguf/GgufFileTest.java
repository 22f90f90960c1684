package qwen.service.model.gguf;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import qwen.service.model.CheckpointException;
import qwen.service.model.Checkpoints;
import qwen.service.model.LayerRange;

/**
 * The GGUF reader on a header laid out byte by byte here (not by {@link GgufWriter}): every
 * metadata value type, an array, a non-default alignment, tensor offsets; and clear errors for
 * truncated, corrupt and unsupported files, naming the file and the tensor.
 */
class GgufFileTest {

    @TempDir
    Path tmp;

    /** A little-endian byte builder for hand-made headers. */
    private static final class Bytes extends ByteArrayOutputStream {
        Bytes u32(int v) {
            write(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(v).array(), 0, 4);
            return this;
        }

        Bytes u64(long v) {
            write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array(), 0, 8);
            return this;
        }

        Bytes str(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            u64(b.length);
            write(b, 0, b.length);
            return this;
        }

        Bytes kv(String key, int type) {
            return str(key).u32(type);
        }

        Bytes pad(int alignment) {
            while (size() % alignment != 0) {
                write(0);
            }
            return this;
        }
    }

    @Test
    void parsesEveryMetadataTypeAlignmentAndTensorInfos() throws Exception {
        Bytes b = new Bytes();
        b.u32(0x46554747).u32(3).u64(2).u64(15);
        b.kv("general.alignment", 4).u32(64);
        b.kv("u8", 0).write(200);
        b.kv("i8", 1).write(-3);
        b.kv("u16", 2).write(new byte[] {(byte) 0xE8, (byte) 0xFD}, 0, 2);      // 65000
        b.kv("i16", 3).write(new byte[] {(byte) 0x18, (byte) 0xFC}, 0, 2);      // -1000
        b.kv("u32", 4).u32(0xFFFFFFFF);
        b.kv("i32", 5).u32(-7);
        b.kv("f32", 6).u32(Float.floatToIntBits(1.5f));
        b.kv("bool", 7).write(1);
        b.kv("string", 8).str("héllo");
        b.kv("u64", 10).u64(1L << 40);
        b.kv("i64", 11).u64(-9);
        b.kv("f64", 12).u64(Double.doubleToLongBits(-2.25));
        b.kv("array.str", 9).u32(8).u64(2).str("a").str("bc");
        b.kv("array.i32", 9).u32(5).u64(3).u32(1).u32(-2).u32(3);
        // Two tensors: an F32 [4] at offset 0 and an F16 [32, 2] at offset 64 (alignment 64).
        b.str("t.f32").u32(1).u64(4).u32(0).u64(0);
        b.str("t.f16").u32(2).u64(32).u64(2).u32(1).u64(64);
        b.pad(64);
        int dataStart = b.size();
        for (int i = 0; i < 4; i++) {
            b.u32(Float.floatToIntBits(i + 0.5f));
        }
        b.pad(64);
        for (int i = 0; i < 64; i++) {
            b.write(new byte[] {(byte) i, 0}, 0, 2);
        }
        Path file = tmp.resolve("hand.gguf");
        Files.write(file, b.toByteArray());
        try (GgufFile f = GgufFile.open(file)) {
            Map<String, Object> m = f.metadata();
            assertEquals(3, f.version());
            assertEquals(64L, m.get("general.alignment"));
            assertEquals(200L, m.get("u8"));
            assertEquals(-3L, m.get("i8"));
            assertEquals(65000L, m.get("u16"));
            assertEquals(-1000L, m.get("i16"));
            assertEquals(0xFFFFFFFFL, m.get("u32"));
            assertEquals(-7L, m.get("i32"));
            assertEquals(1.5f, m.get("f32"));
            assertEquals(true, m.get("bool"));
            assertEquals("héllo", m.get("string"));
            assertEquals(1L << 40, m.get("u64"));
            assertEquals(-9L, m.get("i64"));
            assertEquals(-2.25, m.get("f64"));
            assertEquals(List.of("a", "bc"), m.get("array.str"));
            assertEquals(List.of(1L, -2L, 3L), m.get("array.i32"));
            assertEquals(dataStart, f.dataStart());
            GgufTensor t32 = f.tensors().get("t.f32");
            assertEquals(GgmlType.F32, t32.type());
            assertEquals(16, t32.data().byteSize());
            assertEquals(2.5f, t32.data().get(java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED, 8));
            GgufTensor t16 = f.tensors().get("t.f16");
            assertArrayEquals(new long[] {32, 2}, t16.dims());
            assertEquals(64, t16.offset());
            assertEquals(128, t16.data().byteSize());
            assertEquals(5, t16.data().get(java.lang.foreign.ValueLayout.JAVA_BYTE, 10));
        }
    }

    @Test
    void truncatedFilesNameWhatWasBeingRead() throws Exception {
        Path whole = tmp.resolve("whole.gguf");
        RandomGguf.tiny(GgmlType.Q8_0, 1).write(whole);
        byte[] bytes = Files.readAllBytes(whole);
        long dataStart;
        try (GgufFile f = GgufFile.open(whole)) {
            dataStart = f.dataStart();
        }
        // Inside the metadata, inside the tensor infos, and inside the last tensor's data.
        for (long cut : new long[] {2, 30, 300, dataStart - 10, bytes.length - 5}) {
            Path part = tmp.resolve("cut-" + cut + ".gguf");
            Files.write(part, java.util.Arrays.copyOf(bytes, (int) cut));
            CheckpointException e = assertThrows(CheckpointException.class,
                    () -> Checkpoints.load(part, LayerRange.whole(2)), "cut at " + cut);
            assertTrue(e.getMessage().startsWith(part.toString()), e.getMessage());
            assertTrue(e.getMessage().contains("truncated") || e.getMessage().contains("not a GGUF"), e.getMessage());
            if (cut == bytes.length - 5) {
                assertTrue(e.getMessage().contains("'output.weight'"), e.getMessage());
            }
        }
    }

    @Test
    void corruptOrUnsupportedFilesGetClearErrors() throws Exception {
        Path good = tmp.resolve("good.gguf");
        RandomGguf.tiny(GgmlType.Q4_0, 1).write(good);
        byte[] bytes = Files.readAllBytes(good);

        byte[] magic = bytes.clone();
        magic[0] = 'X';
        assertError(magic, "not a GGUF file");

        byte[] version = bytes.clone();
        version[4] = 9;
        assertError(version, "GGUF version 9 is not supported");

        // The type field of blk.0.ffn_up.weight's info: after its name, n_dims and two dims.
        int at = indexOf(bytes, "blk.0.ffn_up.weight".getBytes(StandardCharsets.US_ASCII)) + 19 + 4 + 16;
        byte[] q3k = bytes.clone();
        q3k[at] = 11;
        assertError(q3k, "tensor 'blk.0.ffn_up.weight' has type Q3_K, which this server does not load");
        byte[] unknown = bytes.clone();
        unknown[at] = 99;
        assertError(unknown, "tensor 'blk.0.ffn_up.weight' has unknown ggml type id 99");

        // A metadata value type that does not exist: the first key's type field.
        int firstType = 24 + 8 + "general.architecture".length();
        byte[] badValue = bytes.clone();
        badValue[firstType] = 77;
        assertError(badValue, "metadata 'general.architecture' has unknown value type 77");
    }

    private void assertError(byte[] content, String expected) throws Exception {
        Path f = tmp.resolve("bad.gguf");
        Files.write(f, content);
        CheckpointException e = assertThrows(CheckpointException.class, () -> Checkpoints.load(f, LayerRange.whole(2)));
        assertTrue(e.getMessage().contains(expected), e.getMessage());
        assertTrue(e.getMessage().startsWith(f.toString()), e.getMessage());
    }

    private static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (hay[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        throw new AssertionError("not found");
    }
}
