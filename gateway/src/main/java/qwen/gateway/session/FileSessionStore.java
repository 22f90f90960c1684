package qwen.gateway.session;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Instant;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;
import org.jboss.logging.Logger;
import qwen.gateway.chat.GatewayException;

/**
 * The embedded, durable session store: one pretty-printed JSON file per session,
 * {@code <dir>/<id>.json}.
 *
 * <p>Every change writes the whole file to a temporary file in the same directory, forces it to
 * disk and renames it over the old one atomically, so a crash or restart leaves each session either
 * as before or as after the change, never half-written. All sessions are read at construction and
 * served from memory afterwards; the files are the durable copy. Changes to one session are
 * serialised (read, modify, write under that session's map entry); different sessions change
 * concurrently. One process owns the directory: for several gateway replicas use a networked store.
 */
public final class FileSessionStore implements SessionStore {

    private static final Logger LOG = Logger.getLogger(FileSessionStore.class);
    private static final String SUFFIX = ".json";
    private static final String TEMP_SUFFIX = ".tmp";
    /** Ids this store issues: 128 random bits as unpadded URL-safe base64 (22 characters). */
    private static final Pattern ID = Pattern.compile("[A-Za-z0-9_-]{22}");
    private static final SecureRandom RANDOM = new SecureRandom();

    private final Path dir;
    private final Clock clock;
    private final ConcurrentHashMap<String, Session> sessions = new ConcurrentHashMap<>();

    /**
     * Opens (creating if needed) the store in {@code dir} and reads every session in it.
     *
     * @param clock the source of create and update times
     * @throws UncheckedIOException when the directory cannot be created or a session file cannot be
     *     read; the message names the file
     */
    public FileSessionStore(Path dir, Clock clock) {
        this.dir = dir.toAbsolutePath();
        this.clock = clock;
        try {
            Files.createDirectories(this.dir);
            load();
        } catch (IOException e) {
            throw new UncheckedIOException("session store " + this.dir + ": " + e.getMessage(), e);
        }
        LOG.infof("session store %s: %d sessions", this.dir, sessions.size());
    }

    /** The directory the files live in. */
    public Path directory() {
        return dir;
    }

    @Override
    public Session create(String title, Map<String, String> metadata, String systemPrompt) {
        Instant now = clock.instant();
        while (true) {
            String id = newId();
            Session session = new Session(id, title, metadata, systemPrompt, now, now, List.of(),
                    Session.sequenceIdFor(id));
            // 128 random bits do not collide in practice; the loop makes it certain.
            if (sessions.computeIfAbsent(id, key -> persist(session)) == session) {
                return session;
            }
        }
    }

    @Override
    public Optional<Session> get(String id) {
        return Optional.ofNullable(sessions.get(id));
    }

    @Override
    public SessionPage list(int pageSize, String pageToken) {
        if (pageSize < 1) {
            throw new IllegalArgumentException("pageSize must be >= 1, got " + pageSize);
        }
        PageToken after = pageToken.isEmpty() ? null : PageToken.decode(pageToken);
        List<Session> ordered = sessions.values().stream()
                .filter(session -> after == null || after.precedes(session))
                .sorted(PageToken.ORDER)
                .limit(pageSize + 1L)
                .toList();
        if (ordered.size() <= pageSize) {
            return new SessionPage(ordered, "");
        }
        List<Session> page = ordered.subList(0, pageSize);
        return new SessionPage(page, PageToken.after(page.getLast()).encode());
    }

    @Override
    public boolean delete(String id) {
        boolean[] existed = {false};
        sessions.computeIfPresent(id, (key, old) -> {
            existed[0] = true;
            try {
                Files.deleteIfExists(file(key));
            } catch (IOException e) {
                throw new UncheckedIOException("cannot delete session file " + file(key), e);
            }
            return null;
        });
        return existed[0];
    }

    @Override
    public Session appendTurn(String id, SessionMessage user, SessionMessage assistant) {
        Session updated = sessions.computeIfPresent(id,
                (key, old) -> persist(old.withTurn(user, assistant, clock.instant())));
        if (updated == null) {
            throw GatewayException.notFound("session " + id + " does not exist (it may have been deleted)");
        }
        return updated;
    }

    /** Writes the session's file atomically and returns the session. */
    private Session persist(Session session) {
        Path target = file(session.id());
        Path temp = dir.resolve(session.id() + "." + newId() + TEMP_SUFFIX);
        try {
            try (FileChannel channel = FileChannel.open(temp, StandardOpenOption.CREATE_NEW,
                    StandardOpenOption.WRITE)) {
                ByteBuffer bytes = ByteBuffer.wrap(SessionJson.write(session));
                while (bytes.hasRemaining()) {
                    channel.write(bytes);
                }
                channel.force(true);
            }
            Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            return session;
        } catch (IOException e) {
            try {
                Files.deleteIfExists(temp);
            } catch (IOException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw new UncheckedIOException("cannot write session file " + target, e);
        }
    }

    private void load() throws IOException {
        try (DirectoryStream<Path> files = Files.newDirectoryStream(dir)) {
            for (Path path : files) {
                String name = path.getFileName().toString();
                if (name.endsWith(TEMP_SUFFIX)) {
                    // A write that never reached its rename: the session file it was replacing is intact.
                    Files.deleteIfExists(path);
                } else if (name.endsWith(SUFFIX) && ID.matcher(idOf(name)).matches()) {
                    Session session = SessionJson.read(Files.readAllBytes(path), path.toString());
                    if (!session.id().equals(idOf(name))) {
                        throw new IOException(path + ": holds session " + session.id());
                    }
                    sessions.put(session.id(), session);
                }
            }
        }
    }

    private Path file(String id) {
        return dir.resolve(id + SUFFIX);
    }

    private static String idOf(String fileName) {
        return fileName.substring(0, fileName.length() - SUFFIX.length());
    }

    private static String newId() {
        byte[] bits = new byte[16];
        RANDOM.nextBytes(bits);
        return Base64.getUrlEncoder().withoutPadding().encodeToString(bits);
    }
}
