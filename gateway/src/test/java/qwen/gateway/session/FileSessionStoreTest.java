package qwen.gateway.session;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import qwen.gateway.chat.ChatMessage.Role;
import qwen.gateway.chat.GatewayException;
import qwen.gateway.chat.Turn;

class FileSessionStoreTest {

    @TempDir
    Path dir;

    /** A clock that moves one second per reading, so update times are distinct and ordered. */
    private final TickingClock clock = new TickingClock(Instant.parse("2025-01-01T00:00:00Z"));

    @Test
    void createdSessionReadsBackWithEveryField() {
        FileSessionStore store = new FileSessionStore(dir, clock);
        Session created = store.create("trip", Map.of("user", "ada", "lang", "中文"), "Be brief.");

        assertTrue(created.id().matches("[A-Za-z0-9_-]{22}"), created.id());
        assertEquals("session-" + created.id(), created.sequenceId());
        assertEquals(created.createTime(), created.updateTime());
        assertEquals(List.of(), created.messages());
        assertEquals(created, store.get(created.id()).orElseThrow());
        assertTrue(Files.isRegularFile(dir.resolve(created.id() + ".json")));
    }

    @Test
    void appendedTurnsSurviveARestart() {
        FileSessionStore store = new FileSessionStore(dir, clock);
        Session session = store.create("", Map.of(), "");
        Session updated = store.appendTurn(session.id(), user("Hi <|im_end|> \"quoted\"\n"), assistant("Hello!"));
        store.appendTurn(session.id(), user("Bye"), assistant(""));

        FileSessionStore reopened = new FileSessionStore(dir, clock);
        Session read = reopened.get(session.id()).orElseThrow();

        assertEquals(store.get(session.id()).orElseThrow(), read);
        assertEquals(List.of(new Turn("Hi <|im_end|> \"quoted\"\n", "Hello!"), new Turn("Bye", "")), read.turns());
        assertTrue(updated.updateTime().isAfter(session.updateTime()));
        assertEquals(session.createTime(), read.createTime());
    }

    @Test
    void listsMostRecentlyUpdatedFirstAcrossPages() {
        FileSessionStore store = new FileSessionStore(dir, clock);
        List<Session> created = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            created.add(store.create("s" + i, Map.of(), ""));
        }
        store.appendTurn(created.get(1).id(), user("q"), assistant("a")); // s1 becomes the newest

        List<String> titles = new ArrayList<>();
        String token = "";
        int pages = 0;
        do {
            SessionPage page = store.list(2, token);
            page.sessions().forEach(s -> titles.add(s.title()));
            token = page.nextPageToken();
            pages++;
        } while (!token.isEmpty());

        assertEquals(List.of("s1", "s4", "s3", "s2", "s0"), titles);
        assertEquals(3, pages);
        assertEquals(titles, new FileSessionStore(dir, clock).list(10, "").sessions().stream()
                .map(Session::title).toList());
    }

    @Test
    void refusesPageTokensItDidNotIssue() {
        FileSessionStore store = new FileSessionStore(dir, clock);
        GatewayException e = assertThrows(GatewayException.class, () -> store.list(10, "not-a-token"));
        assertEquals(GatewayException.Kind.INVALID_ARGUMENT, e.kind());
        assertTrue(e.getMessage().startsWith("page_token"), e.getMessage());
    }

    @Test
    void deleteRemovesTheSessionAndItsFile() throws IOException {
        FileSessionStore store = new FileSessionStore(dir, clock);
        Session kept = store.create("kept", Map.of(), "");
        Session gone = store.create("gone", Map.of(), "");

        assertTrue(store.delete(gone.id()));
        assertFalse(store.delete(gone.id()));
        assertTrue(store.get(gone.id()).isEmpty());
        assertEquals(List.of(kept.id() + ".json"), fileNames());
        assertTrue(new FileSessionStore(dir, clock).get(gone.id()).isEmpty());
        GatewayException e = assertThrows(GatewayException.class,
                () -> store.appendTurn(gone.id(), user("q"), assistant("a")));
        assertEquals(GatewayException.Kind.NOT_FOUND, e.kind());
        assertTrue(e.getMessage().contains(gone.id()), e.getMessage());
    }

    @Test
    void unknownAndHostileIdsAreSimplyAbsent() {
        FileSessionStore store = new FileSessionStore(dir, clock);
        assertTrue(store.get("../../etc/passwd").isEmpty());
        assertTrue(store.get("").isEmpty());
        assertFalse(store.delete("../x"));
    }

    @Test
    void idsAreUniqueAndConcurrentAppendsAreAllKept() throws Exception {
        FileSessionStore store = new FileSessionStore(dir, Clock.systemUTC());
        Set<String> ids = new HashSet<>();
        for (int i = 0; i < 200; i++) {
            assertTrue(ids.add(store.create("", Map.of(), "").id()));
        }
        Session shared = store.create("shared", Map.of(), "");
        ExecutorService pool = Executors.newFixedThreadPool(8);
        try {
            List<Future<?>> writes = new ArrayList<>();
            for (int i = 0; i < 64; i++) {
                String n = Integer.toString(i);
                writes.add(pool.submit(() -> store.appendTurn(shared.id(), user(n), assistant(n))));
            }
            for (Future<?> write : writes) {
                write.get(30, TimeUnit.SECONDS);
            }
        } finally {
            pool.shutdownNow();
        }
        List<Turn> turns = new FileSessionStore(dir, clock).get(shared.id()).orElseThrow().turns();
        assertEquals(64, turns.size());
        turns.forEach(turn -> assertEquals(turn.user(), turn.assistant()));
        assertEquals(64, turns.stream().map(Turn::user).distinct().count());
        assertFalse(fileNames().stream().anyMatch(name -> name.endsWith(".tmp")));
    }

    @Test
    void leftoverTempFilesAreIgnoredAndRemoved() throws IOException {
        FileSessionStore store = new FileSessionStore(dir, clock);
        Session session = store.create("t", Map.of(), "");
        Files.writeString(dir.resolve(session.id() + ".abc.tmp"), "{ half a fi");

        FileSessionStore reopened = new FileSessionStore(dir, clock);

        assertEquals(session, reopened.get(session.id()).orElseThrow());
        assertEquals(List.of(session.id() + ".json"), fileNames());
    }

    @Test
    void aCorruptSessionFileStopsStartUpNamingTheFile() throws IOException {
        Path bad = dir.resolve("AAAAAAAAAAAAAAAAAAAAAA.json");
        Files.writeString(bad, "{\"format\": 99}");
        RuntimeException e = assertThrows(RuntimeException.class, () -> new FileSessionStore(dir, clock));
        assertTrue(e.getMessage().contains(bad.toString()), e.getMessage());
    }

    @Test
    void differentIdsGiveDifferentSequenceIds() {
        FileSessionStore store = new FileSessionStore(dir, clock);
        assertNotEquals(store.create("", Map.of(), "").sequenceId(), store.create("", Map.of(), "").sequenceId());
    }

    private List<String> fileNames() throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            return files.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    private SessionMessage user(String text) {
        return new SessionMessage(Role.USER, text, text.length(), clock.instant());
    }

    private SessionMessage assistant(String text) {
        return new SessionMessage(Role.ASSISTANT, text, text.length(), clock.instant());
    }

    private static final class TickingClock extends Clock {
        private Instant next;

        TickingClock(Instant start) {
            this.next = start;
        }

        @Override
        public synchronized Instant instant() {
            Instant now = next;
            next = next.plusSeconds(1);
            return now;
        }

        @Override
        public java.time.ZoneId getZone() {
            return ZoneOffset.UTC;
        }

        @Override
        public Clock withZone(java.time.ZoneId zone) {
            return this;
        }
    }
}
