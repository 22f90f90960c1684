package qwen.service.model.safetensors;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
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
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import qwen.service.model.CheckpointException;

/**
 * A safetensors file, memory-mapped read-only as a whole (files over 2 GiB included).
 *
 * <p>Layout: an unsigned little-endian 64-bit header length N, N bytes of UTF-8 JSON mapping each
 * tensor name to {@code {"dtype", "shape", "data_offsets": [begin, end]}} (offsets relative to the
 * byte after the header), an optional {@code "__metadata__"} string map, then the tensor bytes.
 * {@link #open} checks the whole header against the file before anything is read, so a truncated
 * or hand-edited file fails with a message naming the file and tensor instead of a crash later.
 *
 * <p>The mapping lives in a shared arena: slices may be read from any thread until {@link #close()}.
 */
public final class SafeTensorsFile implements AutoCloseable {

    /** The format's own limit on header size (safetensors MAX_HEADER_SIZE). */
    static final long MAX_HEADER_BYTES = 100_000_000L;

    static final ValueLayout.OfLong HEADER_LENGTH =
            ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private final Path file;
    private final Arena arena;
    private final MemorySegment data;
    private final Map<String, TensorInfo> tensors;
    private final Map<String, String> metadata;

    private SafeTensorsFile(Path file, Arena arena, MemorySegment data,
            Map<String, TensorInfo> tensors, Map<String, String> metadata) {
        this.file = file;
        this.arena = arena;
        this.data = data;
        this.tensors = tensors;
        this.metadata = metadata;
    }

    /** Maps {@code file} and validates its header; throws {@link CheckpointException} naming the file. */
    public static SafeTensorsFile open(Path file) {
        Arena arena = Arena.ofShared();
        try {
            MemorySegment whole;
            try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
                long size = channel.size();
                if (size < 8) {
                    throw new CheckpointException(file + ": " + size
                            + " bytes, too short for a safetensors file (it starts with an 8-byte header length)");
                }
                whole = channel.map(FileChannel.MapMode.READ_ONLY, 0, size, arena).asReadOnly();
            }
            long size = whole.byteSize();
            long headerBytes = whole.get(HEADER_LENGTH, 0);
            if (headerBytes < 0 || headerBytes > size - 8) {
                throw new CheckpointException(file + ": header length " + Long.toUnsignedString(headerBytes)
                        + " runs past the end of the " + size
                        + "-byte file; the file is truncated or not a safetensors file");
            }
            if (headerBytes > MAX_HEADER_BYTES) {
                throw new CheckpointException(file + ": header length " + headerBytes + " exceeds the format's limit of "
                        + MAX_HEADER_BYTES + " bytes; not a safetensors file");
            }
            String header = new String(whole.asSlice(8, headerBytes).toArray(ValueLayout.JAVA_BYTE),
                    StandardCharsets.UTF_8);
            MemorySegment data = whole.asSlice(8 + headerBytes);
            Map<String, String> metadata = new LinkedHashMap<>();
            Map<String, TensorInfo> tensors = parseHeader(file, header, data.byteSize(), metadata);
            return new SafeTensorsFile(file, arena, data, tensors, Collections.unmodifiableMap(metadata));
        } catch (IOException e) {
            arena.close();
            throw new CheckpointException(file + ": cannot map file: " + e, e);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** The path this file was opened from. */
    public Path file() {
        return file;
    }

    /** Every tensor in the file, in header order. */
    public Map<String, TensorInfo> tensors() {
        return tensors;
    }

    /** The header's {@code __metadata__} (empty if absent). */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** Header entry of {@code name}; throws {@link CheckpointException} when the file has no such tensor. */
    public TensorInfo info(String name) {
        TensorInfo info = tensors.get(name);
        if (info == null) {
            throw new CheckpointException(file + ": no tensor '" + name + "'");
        }
        return info;
    }

    /** A read-only view of the tensor's bytes (little-endian, row-major), valid until {@link #close()}. */
    public MemorySegment data(String name) {
        TensorInfo info = info(name);
        return data.asSlice(info.begin(), info.byteSize());
    }

    /** Unmaps the file; every slice handed out becomes inaccessible. */
    @Override
    public void close() {
        arena.close();
    }

    private static Map<String, TensorInfo> parseHeader(Path file, String header, long dataBytes,
            Map<String, String> metadata) {
        JsonNode root;
        try {
            root = JSON.readTree(header);
        } catch (JacksonException e) {
            throw new CheckpointException(file + ": header is not valid JSON (" + e.getOriginalMessage()
                    + "); the file is corrupt or not a safetensors file");
        }
        if (root == null || !root.isObject()) {
            throw new CheckpointException(file + ": header must be a JSON object of tensors, found "
                    + (root == null ? "nothing" : root.getNodeType()));
        }
        Map<String, TensorInfo> tensors = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> entry : root.properties()) {
            if (entry.getKey().equals("__metadata__")) {
                readMetadata(file, entry.getValue(), metadata);
            } else {
                tensors.put(entry.getKey(), readEntry(file, entry.getKey(), entry.getValue(), dataBytes));
            }
        }
        checkNoOverlap(file, tensors.values());
        return Collections.unmodifiableMap(tensors);
    }

    private static void readMetadata(Path file, JsonNode node, Map<String, String> metadata) {
        if (!node.isObject()) {
            throw new CheckpointException(file + ": header __metadata__ must be an object of strings");
        }
        for (Map.Entry<String, JsonNode> e : node.properties()) {
            if (!e.getValue().isTextual()) {
                throw new CheckpointException(file + ": header __metadata__." + e.getKey() + " must be a string");
            }
            metadata.put(e.getKey(), e.getValue().textValue());
        }
    }

    private static TensorInfo readEntry(Path file, String name, JsonNode node, long dataBytes) {
        String where = file + ": tensor '" + name + "'";
        if (!node.isObject()) {
            throw new CheckpointException(where + ": header entry must be an object with dtype, shape, data_offsets");
        }
        JsonNode dtype = node.get("dtype");
        if (dtype == null || !dtype.isTextual()) {
            throw new CheckpointException(where + ": header entry lacks a string \"dtype\"");
        }
        long[] shape = longs(where, node.get("shape"), "shape", -1);
        long[] offsets = longs(where, node.get("data_offsets"), "data_offsets", 2);
        long begin = offsets[0];
        long end = offsets[1];
        if (begin > end) {
            throw new CheckpointException(where + ": data_offsets [" + begin + ", " + end + "] end before they begin");
        }
        if (end > dataBytes) {
            throw new CheckpointException(where + ": data_offsets [" + begin + ", " + end
                    + "] run past the end of the data section (" + dataBytes + " bytes); the file is truncated");
        }
        TensorInfo info = new TensorInfo(name, dtype.textValue(), shape, begin, end);
        int elementBytes = TensorInfo.formatBytes(info.dtypeTag());
        if (elementBytes > 0) {
            long expected;
            try {
                expected = Math.multiplyExact(info.elementCount(), elementBytes);
            } catch (ArithmeticException e) {
                throw new CheckpointException(where + ": shape " + info.shapeText() + " is too large");
            }
            if (expected != info.byteSize()) {
                throw new CheckpointException(where + ": data_offsets cover " + info.byteSize() + " bytes but "
                        + info.dtypeTag() + info.shapeText() + " needs " + expected);
            }
        }
        return info;
    }

    /** Reads an array of non-negative integers; {@code length} -1 means any length. */
    private static long[] longs(String where, JsonNode node, String field, int length) {
        if (node == null || !node.isArray() || (length >= 0 && node.size() != length)) {
            throw new CheckpointException(where + ": header entry lacks \"" + field + "\" as an array"
                    + (length >= 0 ? " of " + length + " integers" : " of integers"));
        }
        long[] values = new long[node.size()];
        for (int i = 0; i < values.length; i++) {
            JsonNode v = node.get(i);
            if (!v.canConvertToExactIntegral() || !v.canConvertToLong() || v.asLong() < 0) {
                throw new CheckpointException(where + ": \"" + field + "\" must hold non-negative integers, found " + node);
            }
            values[i] = v.asLong();
        }
        return values;
    }

    private static void checkNoOverlap(Path file, Iterable<TensorInfo> infos) {
        List<TensorInfo> sorted = new ArrayList<>();
        for (TensorInfo info : infos) {
            if (info.byteSize() > 0) {
                sorted.add(info);
            }
        }
        sorted.sort(Comparator.comparingLong(TensorInfo::begin));
        for (int i = 1; i < sorted.size(); i++) {
            TensorInfo prev = sorted.get(i - 1);
            TensorInfo next = sorted.get(i);
            if (next.begin() < prev.end()) {
                throw new CheckpointException(file + ": tensor '" + next.name() + "' (bytes " + next.begin() + ".."
                        + next.end() + ") overlaps tensor '" + prev.name() + "' (bytes " + prev.begin() + ".."
                        + prev.end() + "); the header is corrupt");
            }
        }
    }
}
