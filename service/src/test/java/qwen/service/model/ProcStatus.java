package qwen.service.model;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** This JVM's memory figures from Linux's /proc/self/status, for the resident-set tests. */
public final class ProcStatus {

    private ProcStatus() {
    }

    /** VmRSS in bytes. */
    public static long rss() throws IOException {
        return kilobytes("VmRSS") << 10;
    }

    /** The figure of {@code key} in kB, e.g. 404112 for "RssAnon: 404112 kB". */
    public static long kilobytes(String key) throws IOException {
        return Long.parseLong(line(key).replaceAll("[^0-9]", ""));
    }

    /** The line of {@code key}, e.g. "RssAnon: 404112 kB". */
    public static String line(String key) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith(key + ":")) {
                return line.trim().replaceAll("\\s+", " ");
            }
        }
        throw new IllegalStateException(key + " not in /proc/self/status");
    }
}
