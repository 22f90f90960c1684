package qwen.tools;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * Shard services and gateways started as child processes on loopback, for benchmarks that
 * measure the system as deployed. Each process logs to a file; {@link #close()} stops them all.
 */
final class LocalProcesses implements AutoCloseable {

    /** The flags {@code ./qwen serve} starts its gateway with. */
    private static final List<String> GATEWAY_JVM_FLAGS = List.of("-XX:+UseParallelGC");

    private final Path root;
    private final Path logs;
    private final List<Process> processes = new ArrayList<>();

    /** @param root the repository root (the jars are under service/ and gateway/target/quarkus-app) */
    LocalProcesses(Path root, Path logs) throws IOException {
        this.root = root;
        this.logs = Files.createDirectories(logs);
        // Ctrl-C on the benchmark must not leave shards and gateways running.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            synchronized (processes) {
                processes.forEach(Process::destroyForcibly);
            }
        }));
    }

    /** Starts a shard for {@code layers} ("i-j") of the model and waits for its ready line; returns its gRPC port. */
    int shard(Path model, String layers, int threads, Duration timeout) throws Exception {
        return shard(model, layers, threads, List.of(), timeout);
    }

    /** Like {@link #shard(Path, String, int, Duration)} with more {@code -D} settings ({@code key=value}). */
    int shard(Path model, String layers, int threads, List<String> settings, Duration timeout) throws Exception {
        int grpc = freePort();
        List<String> props = new ArrayList<>(List.of("-Dqwen.shard.model-dir=" + model, "-Dqwen.shard.layers=" + layers,
                "-Dqwen.shard.threads=" + threads, "-Dquarkus.grpc.server.port=" + grpc,
                "-Dquarkus.grpc.server.host=127.0.0.1", "-Dquarkus.http.host=127.0.0.1",
                "-Dquarkus.http.port=" + freePort()));
        settings.forEach(setting -> props.add("-D" + setting));
        start("shard-" + layers, root.resolve("service/target/quarkus-app/quarkus-run.jar"),
                List.of("@" + root.resolve("service/jvm.args")), props, "qwen shard ready", timeout);
        return grpc;
    }

    /** Starts a gateway over the given shard ports and waits until it listens; returns its gRPC port. */
    int gateway(List<Integer> shardPorts, Duration timeout) throws Exception {
        return gateway(shardPorts, List.of(), timeout);
    }

    /** Like {@link #gateway(List, Duration)} with more {@code -D} settings ({@code key=value}). */
    int gateway(List<Integer> shardPorts, List<String> settings, Duration timeout) throws Exception {
        int grpc = freePort();
        List<String> props = new ArrayList<>();
        StringBuilder shards = new StringBuilder();
        for (int port : shardPorts) {
            shards.append(shards.isEmpty() ? "" : ",").append("127.0.0.1:").append(port);
        }
        props.add("-Dqwen.gateway.shards=" + shards);
        props.add("-Dqwen.gateway.sessions.dir=" + logs.resolve("sessions"));
        props.add("-Dquarkus.grpc.server.port=" + grpc);
        props.add("-Dquarkus.grpc.server.host=127.0.0.1");
        props.add("-Dquarkus.http.host=127.0.0.1");
        props.add("-Dquarkus.http.port=" + freePort());
        settings.forEach(setting -> props.add("-D" + setting));
        start("gateway", root.resolve("gateway/target/quarkus-app/quarkus-run.jar"), GATEWAY_JVM_FLAGS, props,
                "started in", timeout);
        return grpc;
    }

    private void start(String name, Path jar, List<String> jvmFlags, List<String> props, String readyText, Duration timeout)
            throws Exception {
        if (!Files.exists(jar)) {
            throw new IllegalStateException(jar + " is missing: build with ./mvnw -q install -Dmaven.test.skip=true");
        }
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(jvmFlags);
        cmd.addAll(props);
        cmd.add("-jar");
        cmd.add(jar.toString());
        Path log = logs.resolve(name + ".log");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        synchronized (processes) {
            processes.add(p);
        }
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            if (!p.isAlive()) {
                throw new IllegalStateException(name + " exited with " + p.exitValue() + "; see " + log);
            }
            if (Files.readString(log).contains(readyText)) {
                return;
            }
            Thread.sleep(200);
        }
        throw new IllegalStateException(name + " not ready after " + timeout + "; see " + log);
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    @Override
    public void close() {
        for (Process p : processes.reversed()) {
            p.destroy();
        }
        for (Process p : processes) {
            try {
                if (!p.waitFor(30, java.util.concurrent.TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                }
            } catch (InterruptedException e) {
                p.destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
    }
}
