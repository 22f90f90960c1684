package qwen.gateway.tokenizer;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Qwen-1's tiktoken byte-level BPE tokenizer (SPEC 4), producing the same ids as
 * {@code QWenTokenizer} in Qwen's {@code tokenization_qwen.py}.
 *
 * <p>Instances are immutable and thread-safe; load one per process, since loading parses and
 * hashes the 2.5 MB vocabulary.
 */
public final class QwenTokenizer {

    /** Document separator; also the model's eos and pad id. */
    public static final String ENDOFTEXT = "<|endoftext|>";
    /** Opens a ChatML message. */
    public static final String IM_START = "<|im_start|>";
    /** Closes a ChatML message. */
    public static final String IM_END = "<|im_end|>";
    /** Id of the first special token, {@code <|endoftext|>}. */
    public static final int SPECIAL_START_ID = TiktokenFile.REGULAR_TOKEN_COUNT;
    /** Id of {@value #ENDOFTEXT}: 151643. */
    public static final int ENDOFTEXT_ID = SPECIAL_START_ID;
    /** Id of {@value #IM_START}: 151644. */
    public static final int IM_START_ID = SPECIAL_START_ID + 1;
    /** Id of {@value #IM_END}: 151645. */
    public static final int IM_END_ID = SPECIAL_START_ID + 2;

    /** Classpath location of the bundled vocabulary. */
    public static final String BUNDLED_RESOURCE = "/qwen/qwen.tiktoken";

    /** Special surface form -> id, in id order: endoftext, im_start, im_end, extra_0..extra_204. */
    static final Map<String, Integer> SPECIAL_IDS = specialIds();

    // SPEC 4.2 verbatim. UNICODE_CHARACTER_CLASS makes \s, \p{L} and (?i) Unicode-aware as in the
    // Rust regex tiktoken uses; without it U+3000, U+00A0 and U+2028 split differently.
    private static final Pattern PIECE = Pattern.compile(
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
                    + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
            Pattern.UNICODE_CHARACTER_CLASS);

    private static final int LONGEST_SPECIAL = SPECIAL_IDS.keySet().stream()
            .mapToInt(String::length).max().orElseThrow();

    private final RankTable ranks;
    private final BytePairEncoder merger;
    private final List<byte[]> specialBytes; // [id - SPECIAL_START_ID] -> UTF-8 of the surface form

    private QwenTokenizer(RankTable ranks) {
        this.ranks = ranks;
        this.merger = new BytePairEncoder(ranks);
        List<byte[]> bytes = new ArrayList<>(SPECIAL_IDS.size());
        SPECIAL_IDS.keySet().forEach(s -> bytes.add(s.getBytes(StandardCharsets.UTF_8)));
        this.specialBytes = List.copyOf(bytes);
    }

    /**
     * Loads a {@code qwen.tiktoken} file.
     *
     * @throws IOException if the file cannot be read or is not Qwen-1's vocabulary (its SHA-256
     *     differs from {@code b2b1b8df...3186})
     */
    public static QwenTokenizer fromFile(Path file) throws IOException {
        return new QwenTokenizer(TiktokenFile.parse(Files.readAllBytes(file), file.toString()));
    }

    /**
     * Loads the vocabulary bundled at {@value #BUNDLED_RESOURCE}.
     *
     * @throws IllegalStateException if the resource is missing
     * @throws UncheckedIOException if it cannot be read or its SHA-256 is wrong
     */
    public static QwenTokenizer bundled() {
        try (InputStream in = QwenTokenizer.class.getResourceAsStream(BUNDLED_RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException("classpath resource " + BUNDLED_RESOURCE + " is missing");
            }
            return new QwenTokenizer(TiktokenFile.parse(in.readAllBytes(), "classpath:" + BUNDLED_RESOURCE));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Encodes text: NFC normalisation, then the special-token split for {@code allowed}, then
     * PAT_STR pre-tokenisation and byte-pair merging of each piece (SPEC 4.3).
     */
    public int[] encode(String text, SpecialTokens allowed) {
        Objects.requireNonNull(text, "text");
        Objects.requireNonNull(allowed, "allowed");
        String normal = replaceLoneSurrogates(Normalizer.normalize(text, Normalizer.Form.NFC));
        IdBuffer out = new IdBuffer(normal.length() / 2);
        int ordinaryStart = 0;
        if (!allowed.allowsNone()) {
            for (int at = normal.indexOf("<|"); at >= 0; at = normal.indexOf("<|", at + 1)) {
                String special = specialAt(normal, at);
                if (special != null && allowed.allows(special)) {
                    encodeOrdinary(normal, ordinaryStart, at, out);
                    out.add(SPECIAL_IDS.get(special));
                    ordinaryStart = at + special.length();
                    at = ordinaryStart - 1;
                }
            }
        }
        encodeOrdinary(normal, ordinaryStart, normal.length(), out);
        return out.toArray();
    }

    /**
     * Encodes text with no special tokens recognised, so client text cannot inject control tokens;
     * same as {@code encode(text, SpecialTokens.NONE)}.
     */
    public int[] encodeOrdinary(String text) {
        return encode(text, SpecialTokens.NONE);
    }

    /**
     * Concatenates the raw bytes of the tokens; a special token contributes the UTF-8 of its surface
     * form.
     *
     * @throws IllegalArgumentException if an id is outside {@code [0, vocabularySize())}
     */
    public byte[] decodeBytes(int[] ids) {
        return concatenate(ids, false);
    }

    /** Decodes ids to text with special tokens shown; same as {@code decode(ids, false)}. */
    public String decode(int[] ids) {
        return decode(ids, false);
    }

    /**
     * Decodes ids to text. Bytes are concatenated first and decoded once, so a character split
     * across tokens comes out whole; ill-formed UTF-8 becomes U+FFFD by CPython's
     * {@code errors="replace"} rule.
     *
     * @param skipSpecial drop every special token instead of showing its surface form
     * @throws IllegalArgumentException if an id is outside {@code [0, vocabularySize())}
     */
    public String decode(int[] ids, boolean skipSpecial) {
        return Utf8Decoder.decode(concatenate(ids, skipSpecial));
    }

    /** Regular plus special tokens: 151,851. Valid ids are {@code [0, vocabularySize())}. */
    public int vocabularySize() {
        return ranks.size() + specialBytes.size();
    }

    /** Whether {@code id} is one of the 208 special tokens. */
    public boolean isSpecial(int id) {
        return id >= SPECIAL_START_ID && id < vocabularySize();
    }

    /**
     * The id of a special token.
     *
     * @param surface for example {@code "<|im_end|>"}
     * @throws IllegalArgumentException if it is not a Qwen special token
     */
    public int specialId(String surface) {
        Integer id = SPECIAL_IDS.get(surface);
        if (id == null) {
            throw new IllegalArgumentException("'" + surface + "' is not a Qwen special token");
        }
        return id;
    }

    /** Raw bytes of one token; the caller must not modify them. */
    byte[] tokenBytes(int id) {
        if (id < 0 || id >= vocabularySize()) {
            throw new IllegalArgumentException(
                    "token id " + id + " is outside the vocabulary [0, " + vocabularySize() + ")");
        }
        return id < SPECIAL_START_ID ? ranks.bytes(id) : specialBytes.get(id - SPECIAL_START_ID);
    }

    private void encodeOrdinary(String text, int from, int to, IdBuffer out) {
        if (from == to) {
            return;
        }
        // The region's bounds are opaque, so the (?!\S) lookahead sees the end of this segment
        // rather than the special token after it, as when tiktoken matches each segment alone.
        Matcher pieces = PIECE.matcher(text).region(from, to);
        while (pieces.find()) {
            merger.encode(text.substring(pieces.start(), pieces.end()).getBytes(StandardCharsets.UTF_8), out);
        }
    }

    /** The special surface form starting at {@code at}, or null. */
    private static String specialAt(String text, int at) {
        int limit = Math.min(text.length(), at + LONGEST_SPECIAL);
        for (int close = at + 2; close + 1 < limit; close++) {
            if (text.charAt(close) == '|' && text.charAt(close + 1) == '>') {
                String candidate = text.substring(at, close + 2);
                return SPECIAL_IDS.containsKey(candidate) ? candidate : null;
            }
        }
        return null;
    }

    private byte[] concatenate(int[] ids, boolean skipSpecial) {
        int length = 0;
        for (int id : ids) {
            length += skipSpecial && isSpecial(id) ? 0 : tokenBytes(id).length;
        }
        byte[] out = new byte[length];
        int position = 0;
        for (int id : ids) {
            if (!(skipSpecial && isSpecial(id))) {
                byte[] token = tokenBytes(id);
                System.arraycopy(token, 0, out, position, token.length);
                position += token.length;
            }
        }
        return out;
    }

    /**
     * tiktoken cannot encode lone surrogates; it re-decodes such text with errors="replace", which
     * turns each one into U+FFFD. Java would otherwise encode them as '?'.
     */
    private static String replaceLoneSurrogates(String text) {
        if (text.codePoints().noneMatch(QwenTokenizer::isSurrogate)) {
            return text;
        }
        StringBuilder out = new StringBuilder(text.length());
        text.codePoints().forEach(cp -> out.appendCodePoint(isSurrogate(cp) ? Utf8Decoder.REPLACEMENT : cp));
        return out.toString();
    }

    /** String.codePoints() yields a lone surrogate as its own code point; paired ones never. */
    private static boolean isSurrogate(int codePoint) {
        return codePoint >= Character.MIN_SURROGATE && codePoint <= Character.MAX_SURROGATE;
    }

    private static Map<String, Integer> specialIds() {
        Map<String, Integer> ids = new LinkedHashMap<>();
        ids.put(ENDOFTEXT, ENDOFTEXT_ID);
        ids.put(IM_START, IM_START_ID);
        ids.put(IM_END, IM_END_ID);
        for (int i = 0; i < 205; i++) {
            ids.put("<|extra_" + i + "|>", IM_END_ID + 1 + i);
        }
        return Collections.unmodifiableMap(ids);
    }
}
