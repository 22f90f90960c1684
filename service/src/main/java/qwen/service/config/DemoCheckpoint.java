package qwen.service.config;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.stream.Stream;
import org.jboss.logging.Logger;
import qwen.service.model.RandomCheckpoint;

/**
 * Makes the random-weight demo checkpoint in its directory, once: a directory that already holds
 * the identical checkpoint (same {@link RandomCheckpoint} parameters, written to the end) is
 * reused. Several shard processes of one demo pipeline may start at once on the same directory, so
 * the check and the write happen under a file lock.
 *
 * <p>A marker file says the directory is ours: {@value #MARKER} holds the checkpoint's parameters
 * and a final "complete" line. A non-empty directory without it is refused rather than
 * overwritten, since it may be someone's real model.
 */
public final class DemoCheckpoint {

    private static final Logger LOG = Logger.getLogger(DemoCheckpoint.class);
    static final String MARKER = "qwen-demo-checkpoint.txt";
    private static final String LOCK = ".qwen-demo.lock";
    private static final String COMPLETE = "complete";

    private DemoCheckpoint() {
    }

    /** Ensures {@code dir} holds {@code spec}'s checkpoint, writing it when absent or different. */
    public static void prepare(RandomCheckpoint spec, Path dir) {
        String expected = spec.toString() + "\n" + COMPLETE + "\n";
        try {
            Files.createDirectories(dir);
            try (FileChannel channel = FileChannel.open(dir.resolve(LOCK), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
                 FileLock lock = channel.lock()) {
                Path marker = dir.resolve(MARKER);
                if (Files.isRegularFile(marker) && Files.readString(marker, StandardCharsets.UTF_8).equals(expected)) {
                    LOG.infof("Reusing the random-weight demo checkpoint in %s", dir);
                    return;
                }
                if (!Files.exists(marker) && holdsOtherFiles(dir)) {
                    throw new IllegalArgumentException("qwen.shard.demo-dir " + dir + " is not empty and holds no demo checkpoint ("
                            + MARKER + " is missing); point qwen.shard.demo-dir at an empty or new directory, or use "
                            + "qwen.shard.model-dir for a real checkpoint");
                }
                LOG.infof("Writing the random-weight demo checkpoint (d %d, %d layers, vocab %d) to %s",
                        spec.hiddenSize(), spec.numLayers(), spec.vocabSize(), dir);
                Files.writeString(marker, spec + "\n", StandardCharsets.UTF_8);   // ours, but not complete yet
                spec.writeTo(dir);
                Files.writeString(marker, expected, StandardCharsets.UTF_8);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the demo checkpoint to qwen.shard.demo-dir " + dir + ": " + e.getMessage(), e);
        }
    }

    private static boolean holdsOtherFiles(Path dir) throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            return files.anyMatch(p -> !p.getFileName().toString().equals(LOCK));
        }
    }
}
