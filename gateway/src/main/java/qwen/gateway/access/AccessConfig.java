package qwen.gateway.access;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * API keys: {@code qwen.gateway.access.*}. Keys are secrets: they are never logged; logs and
 * metrics name a key by {@link ApiKeys#fingerprint its fingerprint}.
 */
@ConfigMapping(prefix = "qwen.gateway.access")
public interface AccessConfig {

    /** Whether requests must carry a key. */
    enum Mode {
        /**
         * Keys are required when any is configured. With none, a gateway whose HTTP and gRPC ports
         * listen on loopback only runs open (a local run); one that listens beyond loopback refuses
         * to start.
         */
        AUTO,
        /** Keys are required; start-up fails when none is configured. */
        REQUIRED,
        /** No key is asked for, wherever the gateway listens (logged as a warning off loopback). */
        OFF
    }

    @WithDefault("AUTO")
    Mode mode();

    /** Accepted keys, comma separated (for example from a Secret through QWEN_GATEWAY_ACCESS_KEYS). */
    Optional<List<String>> keys();

    /**
     * A file of accepted keys, one a line; blank lines and lines starting with {@code #} are
     * skipped (for example a Secret mounted as a volume).
     */
    Optional<Path> keysFile();

    /**
     * Most generations (gRPC Chat, HTTP chat completions and completions) one key may have running
     * at once; one more is refused with 429 / RESOURCE_EXHAUSTED. Absent: no cap.
     */
    OptionalInt maxConcurrentPerKey();

    /** A key longer than this is refused without hashing it. */
    int MAX_KEY_LENGTH = 512;

    /** The {@code max-concurrent-per-key} value; 0 for none. */
    default int cap() {
        return maxConcurrentPerKey().orElse(0);
    }
}
