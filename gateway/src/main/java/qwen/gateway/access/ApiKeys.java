package qwen.gateway.access;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Collection;
import java.util.HexFormat;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Collectors;

/**
 * The accepted keys, kept only as SHA-256 digests. A presented key is hashed and looked up, so the
 * comparison takes the same time whatever prefix it shares with an accepted key, and no key text
 * stays in memory past start-up beyond the configuration itself.
 */
public final class ApiKeys {

    /** A key the gateway accepted, known by its fingerprint (safe to log). */
    public record Caller(String fingerprint) {
    }

    private final Map<String, Caller> byDigest;

    /**
     * @param keys accepted keys (each non-blank, no whitespace inside)
     * @throws IllegalArgumentException naming the position of a bad key, never its text
     */
    public ApiKeys(Collection<String> keys) {
        int i = 0;
        for (String key : keys) {
            if (key.isBlank() || key.chars().anyMatch(Character::isWhitespace)
                    || key.length() > AccessConfig.MAX_KEY_LENGTH) {
                throw new IllegalArgumentException("API key #" + (i + 1) + " is blank, holds whitespace or is over "
                        + AccessConfig.MAX_KEY_LENGTH + " characters");
            }
            i++;
        }
        this.byDigest = keys.stream().distinct().collect(Collectors.toUnmodifiableMap(ApiKeys::digest,
                key -> new Caller(fingerprint(key)), (a, b) -> a));
    }

    /** How many distinct keys are accepted. */
    public int size() {
        return byDigest.size();
    }

    /** The caller holding {@code presented}, or empty when it is no accepted key. */
    public Optional<Caller> check(String presented) {
        if (presented == null || presented.isEmpty() || presented.length() > AccessConfig.MAX_KEY_LENGTH) {
            return Optional.empty();
        }
        return Optional.ofNullable(byDigest.get(digest(presented)));
    }

    /**
     * The key from an {@code Authorization} header or metadata value ({@code Bearer <key>}, the
     * scheme in any case); null when the value is absent or of another scheme.
     */
    public static String bearer(String authorization) {
        if (authorization == null) {
            return null;
        }
        String value = authorization.strip();
        if (value.length() < 7 || !value.regionMatches(true, 0, "Bearer ", 0, 7)) {
            return null;
        }
        return value.substring(7).strip();
    }

    /** "key-" and the first 12 hex digits of the key's SHA-256: names a key in logs without revealing it. */
    public static String fingerprint(String key) {
        return "key-" + digest(key).substring(0, 12);
    }

    private static String digest(String key) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(key.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JVM", e);
        }
    }
}
