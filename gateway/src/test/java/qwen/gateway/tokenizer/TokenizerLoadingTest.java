package qwen.gateway.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The vocabulary loads from a file or the classpath, and only if it is Qwen-1's own. */
class TokenizerLoadingTest {

    @TempDir
    Path directory;

    @Test
    void loadsFromAFile() throws IOException {
        Path file = directory.resolve("qwen.tiktoken");
        Files.write(file, bundledBytes());
        QwenTokenizer tokenizer = QwenTokenizer.fromFile(file);
        assertEquals(151_851, tokenizer.vocabularySize());
        assertArrayEquals(new int[] {108386}, tokenizer.encodeOrdinary("你好"));
    }

    @Test
    void rejectsAModifiedVocabularyNamingTheHash() throws IOException {
        byte[] content = bundledBytes();
        content[0] = (byte) (content[0] == 'I' ? 'J' : 'I'); // a different first token
        Path file = directory.resolve("tampered.tiktoken");
        Files.write(file, content);
        IOException e = assertThrows(IOException.class, () -> QwenTokenizer.fromFile(file));
        assertTrue(e.getMessage().contains("sha256"), e.getMessage());
        assertTrue(e.getMessage().contains("b2b1b8dfb5cc5f024bafc373121c6aba3f66f9a5a0269e243470a1de16a33186"),
                e.getMessage());
        assertTrue(e.getMessage().contains("tampered.tiktoken"), e.getMessage());
    }

    @Test
    void rejectsATruncatedVocabulary() throws IOException {
        byte[] content = bundledBytes();
        Path file = directory.resolve("short.tiktoken");
        Files.write(file, java.util.Arrays.copyOf(content, content.length / 2));
        assertThrows(IOException.class, () -> QwenTokenizer.fromFile(file));
    }

    private static byte[] bundledBytes() throws IOException {
        try (InputStream in = TokenizerLoadingTest.class.getResourceAsStream(QwenTokenizer.BUNDLED_RESOURCE)) {
            return in.readAllBytes();
        }
    }
}
