package qwen.gateway.testing;

import grpc.health.v1.HealthGrpc;
import grpc.health.v1.HealthOuterClass.HealthCheckRequest;
import grpc.health.v1.HealthOuterClass.HealthCheckResponse;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import qwen.gateway.shard.ShardClient;
import qwen.proto.shard.v1.ShardInfo;

/**
 * A real shard service process for tests: the built service jar
 * ({@code service/target/quarkus-app/quarkus-run.jar}) serving a layer range of the TINY
 * random-weight demo model (hidden 64, 2 layers, deterministic weights) from its own temporary
 * directory, on free loopback ports.
 *
 * <pre>
 * try (ShardProcess shard = ShardProcess.start("0-1")) {
 *     ShardClient client = ShardClient.create(shard.address(), Duration.ofSeconds(5));
 *     ...
 * }
 * </pre>
 *
 * <p>{@link #start} waits until the shard's health service says SERVING; if the process exits or
 * does not get there within the time allowed, it fails with the tail of the process's log. Build
 * the service first: {@code ./mvnw -q -o -pl proto,service install -DskipTests}. The jar is found
 * from the working directory upwards, or at the system property {@code qwen.test.service-jar}.
 */
public final class ShardProcess implements AutoCloseable {

    /** How long a TINY shard may take to make its checkpoint and start. */
    public static final Duration DEFAULT_START_TIMEOUT = Duration.ofSeconds(90);

    private static final String JAR = "service/target/quarkus-app/quarkus-run.jar";

    private final List<String> command;
    private Process process;
    private final Path dir;
    private final Path log;
    private final int grpcPort;
    private final int httpPort;
    private final String layers;

    private ShardProcess(List<String> command, Path dir, Path log, int grpcPort, int httpPort, String layers) {
        this.command = List.copyOf(command);
        this.dir = dir;
        this.log = log;
        this.grpcPort = grpcPort;
        this.httpPort = httpPort;
        this.layers = layers;
    }

    /**
     * Starts a TINY shard serving {@code layers} (inclusive, "0-1" for the whole model, "0-0" and
     * "1-1" for a two-shard pipeline) and waits until it serves.
     */
    public static ShardProcess start(String layers) {
        return start(layers, Map.of(), DEFAULT_START_TIMEOUT);
    }

    /**
     * Like {@link #start(String)}, with more {@code -D} settings for the service (for example
     * {@code qwen.shard.max-step-tokens}) and a start-up time limit.
     */
    public static ShardProcess start(String layers, Map<String, String> properties, Duration startTimeout) {
        Path jar = serviceJar();
        Path dir;
        try {
            dir = Files.createTempDirectory("qwen-shard-" + layers + "-");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        int grpcPort = freePort();
        int httpPort = freePort();
        List<String> command = new ArrayList<>(List.of(javaBinary(),
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Xmx1g",
                "-Dqwen.shard.demo-model=TINY",
                "-Dqwen.shard.demo-dir=" + dir.resolve("model"),
                "-Dqwen.shard.layers=" + layers,
                "-Dqwen.shard.threads=1",
                "-Dqwen.shard.kv-budget-mb=64",
                "-Dquarkus.grpc.server.host=127.0.0.1",
                "-Dquarkus.grpc.server.port=" + grpcPort,
                "-Dquarkus.http.host=127.0.0.1",
                "-Dquarkus.http.port=" + httpPort));
        properties.forEach((key, value) -> command.add("-D" + key + "=" + value));
        command.addAll(List.of("-jar", jar.toString()));
        ShardProcess shard = new ShardProcess(command, dir, dir.resolve("shard.log"), grpcPort, httpPort, layers);
        try {
            shard.launch(startTimeout);
        } catch (RuntimeException | Error e) {
            shard.close();
            throw e;
        }
        return shard;
    }

    /**
     * Kills the process, as a crash would, and starts it again on the same ports and checkpoint: the
     * shard comes back without any KV.
     */
    public void restart(Duration startTimeout) {
        kill();
        launch(startTimeout);
    }

    /** Kills the process, as a crash would; {@link #restart} brings it back. */
    public void kill() {
        process.descendants().forEach(ProcessHandle::destroyForcibly);
        process.destroyForcibly();
        try {
            process.waitFor(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void launch(Duration startTimeout) {
        try {
            process = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
        } catch (IOException e) {
            throw new IllegalStateException("could not run " + command, e);
        }
        awaitServing(startTimeout);
    }

    /** {@code 127.0.0.1:port} of the shard's gRPC server. */
    public String address() {
        return "127.0.0.1:" + grpcPort;
    }

    public int grpcPort() {
        return grpcPort;
    }

    public int httpPort() {
        return httpPort;
    }

    /** The shard's Info, asked now. */
    public ShardInfo info() {
        try (ShardClient client = ShardClient.create(address(), Duration.ofSeconds(10))) {
            return client.info();
        }
    }

    /** Whether the process still runs. */
    public boolean alive() {
        return process != null && process.isAlive();
    }

    /** The last {@code lines} lines the process wrote (stdout and stderr). */
    public String logTail(int lines) {
        try {
            List<String> all = Files.readAllLines(log, StandardCharsets.UTF_8);
            return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
        } catch (IOException e) {
            return "(no log: " + e.getMessage() + ")";
        }
    }

    /** Kills the process (and its children) and deletes its directory. */
    @Override
    public void close() {
        if (process == null) {
            deleteTree(dir);
            return;
        }
        process.descendants().forEach(ProcessHandle::destroyForcibly);
        process.destroy();
        try {
            if (!process.waitFor(5, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(10, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            process.destroyForcibly();
        }
        deleteTree(dir);
    }

    private void awaitReadyOverHttp(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        URI ready = URI.create("http://127.0.0.1:" + httpPort + "/q/health/ready");
        String last = "no answer yet";
        try (HttpClient http = HttpClient.newHttpClient()) {
            while (System.nanoTime() < deadline) {
                if (!process.isAlive()) {
                    throw new IllegalStateException("shard " + layers + " exited with status " + process.exitValue()
                            + " before serving; its log ends with:\n" + logTail(40));
                }
                try {
                    HttpResponse<Void> answer = http.send(HttpRequest.newBuilder(ready).timeout(Duration.ofSeconds(2)).build(),
                            HttpResponse.BodyHandlers.discarding());
                    if (answer.statusCode() == 200) {
                        return;
                    }
                    last = "HTTP " + answer.statusCode();
                } catch (IOException e) {
                    last = e.toString();
                }
                Thread.sleep(200);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for shard " + layers, e);
        }
        throw new IllegalStateException("shard " + layers + " was not ready within " + timeout + " (last: " + last
                + "); its log ends with:\n" + logTail(40));
    }

    private void awaitServing(Duration timeout) {
        if (command.stream().anyMatch(arg -> arg.startsWith("-Dquarkus.grpc.server.ssl."))) {
            awaitReadyOverHttp(timeout); // the gRPC port speaks TLS
            return;
        }
        long deadline = System.nanoTime() + timeout.toNanos();
        ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", grpcPort).usePlaintext().build();
        try {
            HealthGrpc.HealthBlockingStub health = HealthGrpc.newBlockingStub(channel);
            String last = "no answer yet";
            while (System.nanoTime() < deadline) {
                if (!process.isAlive()) {
                    throw new IllegalStateException("shard " + layers + " exited with status " + process.exitValue()
                            + " before serving; its log ends with:\n" + logTail(40));
                }
                try {
                    HealthCheckResponse answer = health.withDeadlineAfter(2, TimeUnit.SECONDS)
                            .check(HealthCheckRequest.newBuilder().setService("").build());
                    if (answer.getStatus() == HealthCheckResponse.ServingStatus.SERVING) {
                        return;
                    }
                    last = answer.getStatus().name();
                } catch (RuntimeException e) {
                    last = e.getMessage();
                }
                Thread.sleep(200);
            }
            throw new IllegalStateException("shard " + layers + " did not serve within " + timeout + " (last: " + last
                    + "); its log ends with:\n" + logTail(40));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for shard " + layers, e);
        } finally {
            channel.shutdownNow();
        }
    }

    private static Path serviceJar() {
        String configured = System.getProperty("qwen.test.service-jar");
        if (configured != null) {
            Path jar = Path.of(configured);
            if (!Files.isRegularFile(jar)) {
                throw new IllegalStateException("qwen.test.service-jar names " + jar + ", which does not exist");
            }
            return jar;
        }
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            if (Files.isRegularFile(dir.resolve("service/pom.xml"))) {
                Path jar = dir.resolve(JAR);
                if (!Files.isRegularFile(jar)) {
                    throw new IllegalStateException("the shard service is not built: " + jar + " is missing. Build it"
                            + " first, from " + dir + ": ./mvnw -q -o -pl proto,service install -DskipTests");
                }
                return jar;
            }
        }
        throw new IllegalStateException("cannot find the repository's service/ module above "
                + Path.of("").toAbsolutePath() + "; run the tests from the repository, or set -Dqwen.test.service-jar");
    }

    private static String javaBinary() {
        return ProcessHandle.current().info().command()
                .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    }

    private static int freePort() {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            socket.setReuseAddress(true);
            return socket.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void deleteTree(Path root) {
        try (Stream<Path> paths = Files.walk(root)) {
            paths.sorted(Comparator.reverseOrder()).forEach(path -> path.toFile().delete());
        } catch (IOException e) {
            // A leftover temporary directory is harmless.
        }
    }
}
