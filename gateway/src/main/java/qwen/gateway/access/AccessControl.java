package qwen.gateway.access;

import jakarta.inject.Inject;
import jakarta.inject.Singleton;
import java.io.IOException;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import org.eclipse.microprofile.config.Config;
import org.jboss.logging.Logger;

/**
 * Who may call the gateway, decided once at start-up from {@link AccessConfig} and where the
 * gateway listens: open on a loopback-only local run without keys, keys required otherwise. A
 * configuration that would leave a reachable gateway open by accident stops start-up.
 */
@Singleton
public class AccessControl {

    private static final Logger LOG = Logger.getLogger(AccessControl.class);

    /** Why a request is refused. */
    public enum Refusal {
        /** No Authorization: Bearer key. */
        MISSING,
        /** A key that is not accepted. */
        INVALID
    }

    /** The outcome of checking one request: a caller, or a refusal. */
    public record Verdict(ApiKeys.Caller caller, Refusal refusal) {

        public boolean allowed() {
            return refusal == null;
        }

        /** The message a client sees; it never repeats the key. */
        public String message() {
            return refusal == Refusal.MISSING
                    ? "this gateway requires an API key: send the header 'Authorization: Bearer <key>' (gRPC: metadata 'authorization')"
                    : "the API key is not valid";
        }
    }

    private static final Verdict OPEN = new Verdict(null, null);

    private final ApiKeys keys; // null: open
    private final ConcurrencyCap cap;

    @Inject
    AccessControl(AccessConfig config, Config all) {
        this(config, listensBeyondLoopback(all));
    }

    /**
     * @param beyondLoopback whether the HTTP or gRPC server listens on a non-loopback address
     * @throws IllegalStateException naming the key at fault
     */
    public AccessControl(AccessConfig config, boolean beyondLoopback) {
        List<String> configured = loadKeys(config);
        ApiKeys accepted;
        try {
            accepted = configured.isEmpty() ? null : new ApiKeys(configured);
        } catch (IllegalArgumentException e) {
            throw new IllegalStateException("qwen.gateway.access.keys / keys-file: " + e.getMessage(), e);
        }
        switch (config.mode()) {
            case OFF -> {
                accepted = null;
                if (beyondLoopback) {
                    LOG.warn("qwen.gateway.access.mode=OFF: the gateway listens beyond loopback and asks for no API key");
                }
            }
            case REQUIRED -> {
                if (accepted == null) {
                    throw new IllegalStateException("qwen.gateway.access.mode=REQUIRED but no key is configured: set "
                            + "qwen.gateway.access.keys or qwen.gateway.access.keys-file");
                }
            }
            case AUTO -> {
                if (accepted == null && beyondLoopback) {
                    throw new IllegalStateException("the gateway listens beyond loopback (quarkus.http.host or "
                            + "quarkus.grpc.server.host) without API keys: set qwen.gateway.access.keys or "
                            + "qwen.gateway.access.keys-file, listen on 127.0.0.1, or set qwen.gateway.access.mode=OFF");
                }
            }
        }
        int limit = config.cap();
        if (config.maxConcurrentPerKey().isPresent() && limit < 1) {
            throw new IllegalStateException("qwen.gateway.access.max-concurrent-per-key must be >= 1, got " + limit);
        }
        this.keys = accepted;
        this.cap = new ConcurrencyCap(accepted == null ? 0 : limit);
        if (accepted != null) {
            LOG.infof("API keys required: %d key(s) accepted%s", accepted.size(),
                    limit > 0 ? ", at most " + limit + " generations at once per key" : "");
        } else {
            LOG.info("API keys off (the gateway listens on loopback only)");
        }
    }

    /** Whether requests must carry a key. */
    public boolean enabled() {
        return keys != null;
    }

    /** Checks an Authorization header or metadata value. */
    public Verdict check(String authorization) {
        if (keys == null) {
            return OPEN;
        }
        String key = ApiKeys.bearer(authorization);
        if (key == null || key.isEmpty()) {
            return new Verdict(null, Refusal.MISSING);
        }
        return keys.check(key).map(caller -> new Verdict(caller, null)).orElseGet(() -> new Verdict(null, Refusal.INVALID));
    }

    /** The per-key cap on generations at once (no cap when keys are off). */
    public ConcurrencyCap cap() {
        return cap;
    }

    /** The message of a refusal by the cap. */
    public String capMessage(ApiKeys.Caller caller) {
        return "this API key (" + caller.fingerprint() + ") already has " + cap.limit()
                + " generations running, its limit; retry when one has ended";
    }

    private static List<String> loadKeys(AccessConfig config) {
        List<String> keys = new ArrayList<>();
        config.keys().ifPresent(list -> list.stream().map(String::strip).filter(k -> !k.isEmpty()).forEach(keys::add));
        config.keysFile().ifPresent(file -> {
            try {
                for (String line : Files.readAllLines(file)) {
                    String key = line.strip();
                    if (!key.isEmpty() && !key.startsWith("#")) {
                        keys.add(key);
                    }
                }
            } catch (IOException e) {
                throw new IllegalStateException("qwen.gateway.access.keys-file: cannot read " + file.toAbsolutePath()
                        + ": " + e.getMessage(), e);
            }
        });
        return keys;
    }

    private static boolean listensBeyondLoopback(Config all) {
        String http = all.getOptionalValue("quarkus.http.host", String.class).orElse("0.0.0.0");
        String grpc = all.getOptionalValue("quarkus.grpc.server.host", String.class).orElse("0.0.0.0");
        return !loopback(http) || !loopback(grpc);
    }

    private static boolean loopback(String host) {
        try {
            return InetAddress.getByName(host).isLoopbackAddress();
        } catch (UnknownHostException e) {
            return false;
        }
    }
}
