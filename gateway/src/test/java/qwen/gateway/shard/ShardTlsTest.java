package qwen.gateway.shard;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import qwen.gateway.testing.ShardProcess;

/**
 * Gateway-to-shard TLS: a shard serving gRPC over TLS (a self-signed certificate made with the
 * JDK's keytool) is reached by a client that trusts the certificate, and refused to a plaintext one.
 */
@Timeout(180)
class ShardTlsTest {

    @Test
    void aTlsShardAnswersAClientThatTrustsItsCertificateOnly(@TempDir Path dir) throws Exception {
        Path keystore = dir.resolve("shard.p12");
        Path certificate = dir.resolve("shard.pem");
        keytool("-genkeypair", "-alias", "shard", "-keyalg", "EC", "-groupname", "secp256r1", "-validity", "2",
                "-dname", "CN=localhost", "-ext", "SAN=ip:127.0.0.1,dns:localhost",
                "-storetype", "PKCS12", "-keystore", keystore.toString(), "-storepass", "changeit");
        keytool("-exportcert", "-rfc", "-alias", "shard", "-keystore", keystore.toString(), "-storepass", "changeit",
                "-file", certificate.toString());

        try (ShardProcess shard = ShardProcess.start("0-1", Map.of(
                "quarkus.grpc.server.ssl.key-store", keystore.toString(),
                "quarkus.grpc.server.ssl.key-store-password", "changeit",
                "quarkus.grpc.server.plain-text", "false"), ShardProcess.DEFAULT_START_TIMEOUT)) {
            ShardTransport tls = new ShardTransport(Optional.of(certificate));
            try (Pipeline pipeline = Pipeline.open(List.of(ShardClient.create(shard.address(), Duration.ofSeconds(10), tls)),
                    Duration.ofSeconds(30))) {
                assertTrue(pipeline.modelCard().shards().getFirst().serving());
                assertEquals(2, pipeline.modelCard().numLayers());
            }
            try (ShardClient plain = ShardClient.create(shard.address(), Duration.ofSeconds(5))) {
                assertThrows(ShardException.class, plain::info, "a plaintext client gets no answer from a TLS shard");
            }
        }
    }

    private static void keytool(String... args) throws IOException, InterruptedException {
        Path keytool = Path.of(System.getProperty("java.home"), "bin", "keytool");
        List<String> command = new java.util.ArrayList<>(List.of(keytool.toString()));
        command.addAll(List.of(args));
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "keytool timed out");
        assertEquals(0, p.exitValue(), "keytool " + String.join(" ", args) + ":\n" + out);
    }
}
