package qwen.gateway.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Compares the tokenizer's heap-based merge with a direct transcription of tiktoken's quadratic
 * {@code _byte_pair_merge} (rescan all pairs, merge the lowest rank, leftmost on ties), built here
 * from the vocabulary file without any production class.
 */
class TokenizerMergeReferenceTest {

    private static final QwenTokenizer TOKENIZER = QwenTokenizer.bundled();

    private static final Pattern PAT_STR = Pattern.compile(
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
                    + "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
            Pattern.UNICODE_CHARACTER_CLASS);

    // Token bytes as ISO-8859-1 strings: one char per byte, so String equality is byte equality.
    private static final Map<String, Integer> RANKS = new HashMap<>();

    @BeforeAll
    static void readVocabulary() throws IOException {
        try (InputStream in = TokenizerMergeReferenceTest.class.getResourceAsStream("/qwen/qwen.tiktoken")) {
            assertNotNull(in, "qwen.tiktoken is not on the test classpath");
            BufferedReader lines = new BufferedReader(new InputStreamReader(in, StandardCharsets.US_ASCII));
            for (String line = lines.readLine(); line != null; line = lines.readLine()) {
                String[] parts = line.split(" ");
                RANKS.put(new String(Base64.getDecoder().decode(parts[0]), StandardCharsets.ISO_8859_1),
                        Integer.parseInt(parts[1]));
            }
        }
        assertEquals(151_643, RANKS.size());
    }

    @Test
    void samplesMatchTheReference() {
        for (String text : TokenizerRoundTripTest.SAMPLES) {
            assertArrayEquals(reference(text), TOKENIZER.encodeOrdinary(text), text);
        }
    }

    @Test
    void tieHeavyRunsMatchTheReference() {
        // Runs of one repeated unit offer many equal-rank pairs at once: leftmost must win.
        for (String unit : List.of("a", "ab", " ", "=", "-", "\n", "哈", "😀", "0", "__", "\t", ".")) {
            for (int count = 1; count <= 40; count++) {
                String text = unit.repeat(count);
                assertArrayEquals(reference(text), TOKENIZER.encodeOrdinary(text), unit + " x " + count);
            }
        }
    }

    @Test
    void randomTextsMatchTheReference() {
        String[] alphabet = {
            "a", "e", "t", "s", "th", "ing", "A", "Z", " ", "  ", "\n", "\r\n", "\t", "\u3000", "\u00A0",
            "0", "7", ".", ",", "'s", "'LL", "!", "?", "(", ")", "{", "}", "\"", "#", "_", "/", "<|", "|>",
            "的", "是", "中国", "人工智能", "模型", "。", "，", "「", "😀", "👍🏽", "‍", "🇨🇳", "é", "ß", "Ж", "ع",
            "é", "\u0301"
        };
        Random random = new Random(20240601);
        for (int trial = 0; trial < 3000; trial++) {
            StringBuilder text = new StringBuilder();
            int length = 1 + random.nextInt(30);
            for (int i = 0; i < length; i++) {
                text.append(alphabet[random.nextInt(alphabet.length)]);
            }
            String sample = text.toString();
            assertArrayEquals(reference(sample), TOKENIZER.encodeOrdinary(sample), sample);
        }
    }

    private static int[] reference(String text) {
        List<Integer> ids = new ArrayList<>();
        Matcher pieces = PAT_STR.matcher(Normalizer.normalize(text, Normalizer.Form.NFC));
        while (pieces.find()) {
            String piece = new String(pieces.group().getBytes(StandardCharsets.UTF_8), StandardCharsets.ISO_8859_1);
            ids.addAll(bytePairMerge(piece));
        }
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    private static List<Integer> bytePairMerge(String piece) {
        if (RANKS.containsKey(piece)) {
            return List.of(RANKS.get(piece)); // tiktoken looks the whole piece up before merging
        }
        List<String> parts = new ArrayList<>();
        for (char b : piece.toCharArray()) {
            parts.add(String.valueOf(b));
        }
        while (true) {
            int best = -1;
            int bestRank = Integer.MAX_VALUE;
            for (int i = 0; i + 1 < parts.size(); i++) {
                Integer rank = RANKS.get(parts.get(i) + parts.get(i + 1));
                if (rank != null && rank < bestRank) {
                    best = i;
                    bestRank = rank;
                }
            }
            if (best < 0) {
                break;
            }
            parts.set(best, parts.get(best) + parts.remove(best + 1));
        }
        return parts.stream().map(RANKS::get).toList();
    }
}
