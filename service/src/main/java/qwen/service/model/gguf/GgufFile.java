package qwen.service.model.gguf;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import qwen.service.model.CheckpointException;

/**
 * A GGUF file (versions 2 and 3), memory-mapped read-only: the metadata key/values, the tensor
 * infos, and each tensor's bytes as a view into the mapping (never copied).
 *
 * <pre>
 * u32 magic "GGUF", u32 version, u64 tensor_count, u64 kv_count
 * kv_count x { string key, u32 value_type, value }
 * tensor_count x { string name, u32 n_dims, u64 dims[n_dims], u32 ggml_type, u64 offset }
 * padding to general.alignment (default 32), then the data section; offsets are from its start
 * string = u64 length + UTF-8 bytes; array = u32 element type + u64 count + elements
 * </pre>
 *
 * Every read is bounds-checked, so a truncated or corrupt file gives a {@link CheckpointException}
 * naming the file and what was being read, never an out-of-bounds error.
 */
public final class GgufFile implements AutoCloseable {

    /** "GGUF" read as a little-endian u32. */
    static final int MAGIC = 0x46554747;
    static final long DEFAULT_ALIGNMENT = 32;

    private final Path path;
    private final Arena arena;
    private final int version;
    private final Map<String, Object> metadata;
    private final Map<String, GgufTensor> tensors;
    private final long dataStart;

    private GgufFile(Path path, Arena arena, int version, Map<String, Object> metadata,
                     Map<String, GgufTensor> tensors, long dataStart) {
        this.path = path;
        this.arena = arena;
        this.version = version;
        this.metadata = metadata;
        this.tensors = tensors;
        this.dataStart = dataStart;
    }

    /** Maps and parses the file; close it to unmap. */
    public static GgufFile open(Path path) {
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            MemorySegment file = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
            return parse(path, arena, file);
        } catch (IOException e) {
            arena.close();
            throw new CheckpointException(path + ": cannot read GGUF file: " + e.getMessage(), e);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static GgufFile parse(Path path, Arena arena, MemorySegment file) {
        Cursor c = new Cursor(path, file);
        if (file.byteSize() < 4 || c.u32("magic") != MAGIC) {
            throw new CheckpointException(path + ": not a GGUF file (no \"GGUF\" magic at byte 0)");
        }
        int version = c.u32("version");
        if (version != 2 && version != 3) {
            throw new CheckpointException(path + ": GGUF version " + version + " is not supported (2 or 3)");
        }
        long tensorCount = c.count("tensor_count", 1L << 20);
        long kvCount = c.count("metadata kv_count", 1L << 20);
        Map<String, Object> metadata = new LinkedHashMap<>();
        for (long i = 0; i < kvCount; i++) {
            String key = c.string("metadata key #" + i);
            int type = c.u32("type of metadata '" + key + "'");
            metadata.put(key, c.value(type, "metadata '" + key + "'"));
        }
        long alignment = DEFAULT_ALIGNMENT;
        Object a = metadata.get("general.alignment");
        if (a != null) {
            if (!(a instanceof Number n) || n.longValue() <= 0 || Long.bitCount(n.longValue()) != 1) {
                throw new CheckpointException(path + ": general.alignment " + a + " is not a power of two");
            }
            alignment = n.longValue();
        }
        List<long[]> infos = new ArrayList<>();
        List<String> names = new ArrayList<>();
        List<GgmlType> types = new ArrayList<>();
        for (long i = 0; i < tensorCount; i++) {
            String name = c.string("name of tensor #" + i);
            int nDims = c.u32("n_dims of tensor '" + name + "'");
            if (nDims < 1 || nDims > 4) {
                throw new CheckpointException(path + ": tensor '" + name + "' has " + nDims + " dimensions (1 to 4 allowed)");
            }
            long[] dims = new long[nDims + 1];
            for (int d = 0; d < nDims; d++) {
                dims[d] = c.u64("dimension " + d + " of tensor '" + name + "'");
                if (dims[d] <= 0 || dims[d] > (1L << 40)) {
                    throw new CheckpointException(path + ": tensor '" + name + "' has dimension " + d + " = " + dims[d]);
                }
            }
            int typeId = c.u32("type of tensor '" + name + "'");
            GgmlType type = GgmlType.ofId(typeId);
            if (type == null) {
                throw new CheckpointException(path + ": tensor '" + name + "' has unknown ggml type id " + typeId);
            }
            dims[nDims] = c.u64("offset of tensor '" + name + "'");
            if (dims[nDims] % alignment != 0) {
                throw new CheckpointException(path + ": tensor '" + name + "' data offset " + dims[nDims]
                        + " is not a multiple of the alignment " + alignment);
            }
            names.add(name);
            types.add(type);
            infos.add(dims);
        }
        long dataStart = (c.at + alignment - 1) / alignment * alignment;
        Map<String, GgufTensor> tensors = new LinkedHashMap<>();
        for (int i = 0; i < names.size(); i++) {
            long[] info = infos.get(i);
            long[] dims = java.util.Arrays.copyOf(info, info.length - 1);
            long offset = info[info.length - 1];
            String name = names.get(i);
            GgmlType type = types.get(i);
            long bytes = byteSize(path, name, type, dims);
            long from = dataStart + offset;
            if (bytes >= 0 && (from > file.byteSize() || bytes > file.byteSize() - from)) {
                throw new CheckpointException(path + ": tensor '" + name + "' (" + type + " " + java.util.Arrays.toString(dims)
                        + ") needs bytes [" + from + ", " + (from + bytes) + ") but the file has " + file.byteSize()
                        + " bytes (truncated?)");
            }
            MemorySegment data = bytes >= 0 ? file.asSlice(from, bytes) : MemorySegment.NULL;
            if (tensors.put(name, new GgufTensor(name, dims, type, offset, data)) != null) {
                throw new CheckpointException(path + ": tensor '" + name + "' appears twice");
            }
        }
        return new GgufFile(path, arena, version, Collections.unmodifiableMap(metadata),
                Collections.unmodifiableMap(tensors), dataStart);
    }

    /** Bytes of a tensor of a supported type; -1 for types we cannot size (never loaded). */
    private static long byteSize(Path path, String name, GgmlType type, long[] dims) {
        if (type.dtype() == null) {
            return -1;
        }
        long inner = dims[0];
        if (inner % type.dtype().blockSize() != 0) {
            throw new CheckpointException(path + ": tensor '" + name + "' (" + type + ") has " + inner
                    + " elements per row, not a multiple of the block size " + type.dtype().blockSize());
        }
        long n = type.dtype().rowBytes(inner);
        for (int d = 1; d < dims.length; d++) {
            n = Math.multiplyExact(n, dims[d]);
        }
        return n;
    }

    public Path path() {
        return path;
    }

    public int version() {
        return version;
    }

    /** Key/values in file order: Long for integer types, Double/Float, Boolean, String, List for arrays. */
    public Map<String, Object> metadata() {
        return metadata;
    }

    /** Tensors by name, in file order. */
    public Map<String, GgufTensor> tensors() {
        return tensors;
    }

    /** Byte offset of the data section. */
    public long dataStart() {
        return dataStart;
    }

    @Override
    public void close() {
        arena.close();
    }

    /** A bounds-checked little-endian reader over the mapped bytes. */
    private static final class Cursor {
        private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

        private final Path path;
        private final MemorySegment file;
        long at;

        Cursor(Path path, MemorySegment file) {
            this.path = path;
            this.file = file;
        }

        private void need(long n, String what) {
            if (n < 0 || at + n > file.byteSize()) {
                throw new CheckpointException(path + ": file ends at byte " + file.byteSize() + " while reading "
                        + what + " at byte " + at + " (truncated or corrupt GGUF header)");
            }
        }

        int u32(String what) {
            need(4, what);
            int v = file.get(I32, at);
            at += 4;
            return v;
        }

        long u64(String what) {
            need(8, what);
            long v = file.get(I64, at);
            at += 8;
            return v;
        }

        long count(String what, long max) {
            long n = u64(what);
            if (n < 0 || n > max) {
                throw new CheckpointException(path + ": " + what + " " + Long.toUnsignedString(n) + " is not plausible (corrupt header?)");
            }
            return n;
        }

        String string(String what) {
            long n = u64("length of " + what);
            if (n < 0 || n > Integer.MAX_VALUE) {
                throw new CheckpointException(path + ": " + what + " has length " + Long.toUnsignedString(n) + " (corrupt header?)");
            }
            need(n, what);
            byte[] b = file.asSlice(at, n).toArray(ValueLayout.JAVA_BYTE);
            at += n;
            return new String(b, StandardCharsets.UTF_8);
        }

        Object value(int type, String what) {
            switch (type) {
                case 0, 1 -> {
                    need(1, what);
                    byte b = file.get(ValueLayout.JAVA_BYTE, at++);
                    return (long) (type == 0 ? b & 0xFF : b);
                }
                case 2, 3 -> {
                    need(2, what);
                    short s = file.get(I16, at);
                    at += 2;
                    return (long) (type == 2 ? s & 0xFFFF : s);
                }
                case 4 -> {
                    return Integer.toUnsignedLong(u32(what));
                }
                case 5 -> {
                    return (long) u32(what);
                }
                case 6 -> {
                    need(4, what);
                    float f = file.get(F32, at);
                    at += 4;
                    return f;
                }
                case 7 -> {
                    need(1, what);
                    return file.get(ValueLayout.JAVA_BYTE, at++) != 0;
                }
                case 8 -> {
                    return string(what);
                }
                case 9 -> {
                    int elementType = u32("element type of " + what);
                    if (elementType == 9) {
                        throw new CheckpointException(path + ": " + what + " is an array of arrays, which this reader does not load");
                    }
                    long n = count("length of " + what, 1L << 26);
                    List<Object> list = new ArrayList<>((int) Math.min(n, 1 << 20));
                    for (long i = 0; i < n; i++) {
                        list.add(value(elementType, what));
                    }
                    return Collections.unmodifiableList(list);
                }
                case 10, 11 -> {
                    return u64(what);
                }
                case 12 -> {
                    need(8, what);
                    double d = file.get(F64, at);
                    at += 8;
                    return d;
                }
                default -> throw new CheckpointException(path + ": " + what + " has unknown value type " + type
                        + " at byte " + (at - 4) + " (corrupt header?)");
            }
        }
    }
}
