package qwen.service.model.gguf;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Writes GGUF version 3 files: metadata, tensor infos, then each tensor's bytes, filled in place
 * through a writable mapping (so multi-GB files are written without heap copies).
 *
 * <p>Metadata values are typed by their Java class, as llama.cpp checks key types: Integer is
 * UINT32, Long UINT64, Float FLOAT32, Double FLOAT64, Boolean BOOL, String STRING, a List of
 * Strings an array of STRING, an int[] an array of INT32.
 */
public final class GgufWriter {

    /**
     * A tensor to write.
     *
     * @param dims GGUF order, innermost first
     * @param fill writes exactly the tensor's bytes into the given segment
     */
    public record Tensor(String name, long[] dims, GgmlType type, Consumer<MemorySegment> fill) {

        long byteSize() {
            long n = type.dtype().rowBytes(dims[0]);
            for (int d = 1; d < dims.length; d++) {
                n *= dims[d];
            }
            return n;
        }
    }

    private GgufWriter() {
    }

    /** Writes the file (replacing it), with 32-byte alignment. */
    public static void write(Path path, Map<String, Object> metadata, List<Tensor> tensors) throws IOException {
        long alignment = GgufFile.DEFAULT_ALIGNMENT;
        Out h = new Out();
        h.u32(GgufFile.MAGIC);
        h.u32(3);
        h.u64(tensors.size());
        h.u64(metadata.size());
        for (Map.Entry<String, Object> e : metadata.entrySet()) {
            h.string(e.getKey());
            h.value(e.getKey(), e.getValue());
        }
        long[] offsets = new long[tensors.size()];
        long offset = 0;
        for (int i = 0; i < tensors.size(); i++) {
            Tensor t = tensors.get(i);
            h.string(t.name());
            h.u32(t.dims().length);
            for (long d : t.dims()) {
                h.u64(d);
            }
            h.u32(t.type().id());
            h.u64(offset);
            offsets[i] = offset;
            offset = (offset + t.byteSize() + alignment - 1) / alignment * alignment;
        }
        long dataStart = (h.size() + alignment - 1) / alignment * alignment;
        long total = dataStart + offset;
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.READ, StandardOpenOption.WRITE);
             Arena arena = Arena.ofShared()) {
            ByteBuffer header = ByteBuffer.wrap(h.toByteArray());
            while (header.hasRemaining()) {
                ch.write(header);
            }
            if (total > dataStart || tensors.isEmpty()) {
                ch.write(ByteBuffer.allocate(1), total - 1);
            }
            MemorySegment file = ch.map(FileChannel.MapMode.READ_WRITE, 0, total, arena);
            for (int i = 0; i < tensors.size(); i++) {
                Tensor t = tensors.get(i);
                t.fill().accept(file.asSlice(dataStart + offsets[i], t.byteSize()));
            }
            file.force();
        }
    }

    /** A little-endian byte buffer. */
    private static final class Out extends ByteArrayOutputStream {
        private final ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);

        void u32(int v) {
            write(b.clear().putInt(v).array(), 0, 4);
        }

        void u64(long v) {
            write(b.clear().putLong(v).array(), 0, 8);
        }

        void string(String s) {
            byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
            u64(bytes.length);
            write(bytes, 0, bytes.length);
        }

        void value(String key, Object v) {
            switch (v) {
                case Integer i -> {
                    u32(4);
                    u32(i);
                }
                case Long l -> {
                    u32(10);
                    u64(l);
                }
                case Float f -> {
                    u32(6);
                    u32(Float.floatToRawIntBits(f));
                }
                case Double d -> {
                    u32(12);
                    u64(Double.doubleToRawLongBits(d));
                }
                case Boolean z -> {
                    u32(7);
                    write(z ? 1 : 0);
                }
                case String s -> {
                    u32(8);
                    string(s);
                }
                case int[] a -> {
                    u32(9);
                    u32(5);
                    u64(a.length);
                    for (int x : a) {
                        u32(x);
                    }
                }
                case List<?> list -> {
                    u32(9);
                    u32(8);
                    u64(list.size());
                    for (Object o : list) {
                        string((String) o);
                    }
                }
                default -> throw new IllegalArgumentException("metadata " + key + ": cannot write a " + v.getClass());
            }
        }
    }
}
