package qwen.service.model.safetensors;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.function.Consumer;

/** Test helper: hand-edits safetensors files the way a broken export or a bad download would. */
public final class SafeTensorsEdit {

    private static final ObjectMapper JSON = new ObjectMapper();

    private SafeTensorsEdit() {
    }

    /** The header of {@code file} as a mutable JSON object. */
    public static ObjectNode header(Path file) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        long length = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        return (ObjectNode) JSON.readTree(new String(bytes, 8, (int) length, StandardCharsets.UTF_8));
    }

    /** Rewrites {@code file} with its header changed by {@code edit} and {@code extraData} appended to the data. */
    public static void rewriteHeader(Path file, Consumer<ObjectNode> edit, byte[] extraData) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        long length = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        ObjectNode header = (ObjectNode) JSON.readTree(new String(bytes, 8, (int) length, StandardCharsets.UTF_8));
        edit.accept(header);
        byte[] json = JSON.writeValueAsBytes(header);
        byte[] padded = Arrays.copyOf(json, (json.length + 7) / 8 * 8);
        Arrays.fill(padded, json.length, padded.length, (byte) ' ');
        byte[] data = Arrays.copyOfRange(bytes, 8 + (int) length, bytes.length);
        ByteBuffer out = ByteBuffer.allocate(8 + padded.length + data.length + extraData.length).order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(padded.length).put(padded).put(data).put(extraData);
        Files.write(file, out.array());
    }

    /** Rewrites {@code file} with its header changed by {@code edit}. */
    public static void rewriteHeader(Path file, Consumer<ObjectNode> edit) throws IOException {
        rewriteHeader(file, edit, new byte[0]);
    }

    /** Data-section size of {@code file}: where appended bytes start, relative to the data section. */
    public static long dataBytes(Path file) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        long length = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        return bytes.length - 8 - length;
    }

    /** Overwrites bytes at an absolute file position. */
    public static void overwrite(Path file, long position, byte[] bytes) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(bytes), position);
        }
    }

    /** Overwrites the 8-byte header length. */
    public static void setHeaderLength(Path file, long length) throws IOException {
        overwrite(file, 0, ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(length).array());
    }

    /** Cuts {@code bytes} off the end of the file, as an interrupted download would. */
    public static void truncate(Path file, long bytes) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.truncate(ch.size() - bytes);
        }
    }

    /** Absolute file position of the first byte of tensor {@code name}. */
    public static long position(Path file, String name) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        long length = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        return 8 + length + header(file).get(name).get("data_offsets").get(0).asLong();
    }
}
