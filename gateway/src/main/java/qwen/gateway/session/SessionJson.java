package qwen.gateway.session;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import qwen.gateway.chat.ChatMessage;

/**
 * The on-disk JSON form of a {@link Session}, written field by field so that the file format is
 * explicit and stays readable when the records change. Times are ISO-8601 instants; "format" is
 * the version of this layout.
 */
final class SessionJson {

    /** Version of the layout below; a file with another version is refused, not guessed at. */
    static final int FORMAT = 1;

    private static final ObjectMapper JSON = new ObjectMapper();

    private SessionJson() {
    }

    static byte[] write(Session session) {
        ObjectNode root = JSON.createObjectNode();
        root.put("format", FORMAT);
        root.put("id", session.id());
        root.put("sequence_id", session.sequenceId());
        root.put("title", session.title());
        ObjectNode metadata = root.putObject("metadata");
        session.metadata().forEach(metadata::put);
        root.put("system_prompt", session.systemPrompt());
        root.put("create_time", session.createTime().toString());
        root.put("update_time", session.updateTime().toString());
        ArrayNode messages = root.putArray("messages");
        for (SessionMessage message : session.messages()) {
            ObjectNode node = messages.addObject();
            node.put("role", message.role().name().toLowerCase(Locale.ROOT));
            node.put("content", message.content());
            node.put("token_count", message.tokenCount());
            node.put("create_time", message.createTime().toString());
        }
        try {
            return JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(root);
        } catch (IOException e) {
            throw new IllegalStateException("cannot serialise session " + session.id(), e);
        }
    }

    /**
     * @param source the file, for error messages
     * @throws IOException when the bytes are not a session of this format
     */
    static Session read(byte[] bytes, String source) throws IOException {
        JsonNode root = JSON.readTree(bytes);
        if (root == null || !root.isObject()) {
            throw new IOException(source + ": expected a JSON object");
        }
        int format = root.path("format").asInt(-1);
        if (format != FORMAT) {
            throw new IOException(source + ": session format " + root.path("format") + ", expected " + FORMAT);
        }
        try {
            Map<String, String> metadata = new LinkedHashMap<>();
            root.path("metadata").properties().forEach(e -> metadata.put(e.getKey(), e.getValue().asText()));
            List<SessionMessage> messages = new ArrayList<>();
            for (JsonNode node : root.path("messages")) {
                messages.add(new SessionMessage(
                        ChatMessage.Role.valueOf(text(node, "role", source).toUpperCase(Locale.ROOT)),
                        text(node, "content", source),
                        node.path("token_count").asInt(0),
                        Instant.parse(text(node, "create_time", source))));
            }
            return new Session(
                    text(root, "id", source),
                    text(root, "title", source),
                    metadata,
                    text(root, "system_prompt", source),
                    Instant.parse(text(root, "create_time", source)),
                    Instant.parse(text(root, "update_time", source)),
                    messages,
                    text(root, "sequence_id", source));
        } catch (DateTimeParseException | IllegalArgumentException e) {
            throw new IOException(source + ": " + e.getMessage(), e);
        }
    }

    private static String text(JsonNode node, String key, String source) throws IOException {
        JsonNode value = node.get(key);
        if (value == null || !value.isTextual()) {
            throw new IOException(source + ": \"" + key + "\" is missing or not a string");
        }
        return value.textValue();
    }
}
