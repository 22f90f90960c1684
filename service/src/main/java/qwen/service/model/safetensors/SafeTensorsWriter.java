package qwen.service.model.safetensors;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;
import qwen.service.model.DType;

/**
 * Writes safetensors files by mapping the output read-write and letting each tensor fill its own
 * slice, so multi-gigabyte checkpoints are produced without heap copies.
 */
public final class SafeTensorsWriter {

    private static final ObjectMapper JSON = new ObjectMapper();

    private SafeTensorsWriter() {
    }

    /**
     * One tensor to write.
     *
     * @param name tensor name
     * @param dtypeTag the safetensors dtype ("F32", "BF16", "I32", ...: any the format defines)
     * @param shape dimensions, outermost first
     * @param fill writes the tensor's bytes (little-endian, row-major) into the slice it is given;
     *     the slice is exactly elementCount * element bytes long and belongs to a shared arena, so
     *     the fill may split the work across threads as long as it returns only when all are done
     */
    public record TensorSpec(String name, String dtypeTag, long[] shape, Consumer<MemorySegment> fill) {

        public TensorSpec {
            if (TensorInfo.formatBytes(dtypeTag) < 0) {
                throw new IllegalArgumentException(name + ": '" + dtypeTag + "' is not a safetensors dtype");
            }
            shape = shape.clone();
        }

        /** A tensor of one of the element types this server loads. */
        public TensorSpec(String name, DType dtype, long[] shape, Consumer<MemorySegment> fill) {
            this(name, dtype.tag(), shape, fill);
        }

        /** Bytes of data this tensor occupies. */
        public long byteSize() {
            long count = TensorInfo.formatBytes(dtypeTag);
            for (long d : shape) {
                count = Math.multiplyExact(count, d);
            }
            return count;
        }
    }

    /**
     * Writes {@code tensors} to {@code file} (replacing it) in the given order. The header carries
     * {@code __metadata__ {"format": "pt"}} as PyTorch's writer does and is padded with spaces so
     * the data section starts 8-byte aligned. Fills run one after another, in list order.
     */
    public static void write(Path file, List<TensorSpec> tensors) {
        byte[] header = header(tensors);
        long dataBytes = 0;
        for (TensorSpec t : tensors) {
            dataBytes += t.byteSize();
        }
        long total = 8 + header.length + dataBytes;
        try (Arena arena = Arena.ofShared();
                FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE,
                        StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            MemorySegment out = channel.map(FileChannel.MapMode.READ_WRITE, 0, total, arena);
            out.set(SafeTensorsFile.HEADER_LENGTH, 0, header.length);
            MemorySegment.copy(MemorySegment.ofArray(header), 0, out, 8, header.length);
            long offset = 8 + header.length;
            for (TensorSpec t : tensors) {
                long bytes = t.byteSize();
                t.fill().accept(out.asSlice(offset, bytes));
                offset += bytes;
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file + ": " + e.getMessage(), e);
        }
    }

    /** The header JSON, space-padded so that 8 + its length is a multiple of 8. */
    static byte[] header(List<TensorSpec> tensors) {
        ObjectNode root = JSON.createObjectNode();
        root.putObject("__metadata__").put("format", "pt");
        Set<String> names = new HashSet<>();
        long offset = 0;
        for (TensorSpec t : tensors) {
            if (t.name().equals("__metadata__") || !names.add(t.name())) {
                throw new IllegalArgumentException("tensor name '" + t.name() + "' is reserved or repeated");
            }
            if (Arrays.stream(t.shape()).anyMatch(d -> d < 0)) {
                throw new IllegalArgumentException(t.name() + ": negative dimension in " + Arrays.toString(t.shape()));
            }
            ObjectNode entry = root.putObject(t.name());
            entry.put("dtype", t.dtypeTag());
            ArrayNode shape = entry.putArray("shape");
            Arrays.stream(t.shape()).forEach(shape::add);
            long end = offset + t.byteSize();
            entry.putArray("data_offsets").add(offset).add(end);
            offset = end;
        }
        byte[] json;
        try {
            json = JSON.writeValueAsString(root).getBytes(StandardCharsets.UTF_8);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot serialise a safetensors header", e);
        }
        int padded = (json.length + 7) / 8 * 8;
        byte[] header = Arrays.copyOf(json, padded);
        Arrays.fill(header, json.length, padded, (byte) ' ');
        return header;
    }
}
