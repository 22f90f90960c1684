package qwen.gateway.access;

import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;

/** An {@link AccessConfig} with fixed values, for tests that build {@link AccessControl} directly. */
record TestAccessConfig(Mode mode, Optional<List<String>> keys, Optional<Path> keysFile, OptionalInt maxConcurrentPerKey)
        implements AccessConfig {

    static TestAccessConfig of(String... keys) {
        return new TestAccessConfig(Mode.AUTO, keys.length == 0 ? Optional.empty() : Optional.of(List.of(keys)),
                Optional.empty(), OptionalInt.empty());
    }

    TestAccessConfig withMode(Mode next) {
        return new TestAccessConfig(next, keys, keysFile, maxConcurrentPerKey);
    }

    TestAccessConfig withCap(int cap) {
        return new TestAccessConfig(mode, keys, keysFile, OptionalInt.of(cap));
    }

    TestAccessConfig withFile(Path file) {
        return new TestAccessConfig(mode, keys, Optional.of(file), maxConcurrentPerKey);
    }
}
