package qwen.gateway.shard;

import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyChannelBuilder;
import io.smallrye.config.ConfigMapping;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import javax.net.ssl.SSLException;

/**
 * How the gateway reaches its shards: plaintext (the default, for loopback and trusted networks)
 * or TLS, trusting the certificate authority in {@code qwen.gateway.shard-tls.trust-certificate}
 * (PEM). The shards then serve TLS with {@code quarkus.grpc.server.ssl.certificate} and {@code .key}.
 *
 * @param trustCertificate the PEM CA certificate(s) the shards' certificates are signed with; empty
 *     for plaintext
 */
public record ShardTransport(Optional<Path> trustCertificate) {

    /** Plaintext. */
    public static final ShardTransport PLAINTEXT = new ShardTransport(Optional.empty());

    /** {@code qwen.gateway.shard-tls.*}. */
    @ConfigMapping(prefix = "qwen.gateway.shard-tls")
    public interface Config {
        /** A PEM file of the CA certificate(s) to trust; absent: plaintext to the shards. */
        Optional<Path> trustCertificate();
    }

    /**
     * From the configuration.
     *
     * @throws IllegalStateException naming the key when the file is not readable
     */
    public static ShardTransport of(Config config) {
        config.trustCertificate().ifPresent(file -> {
            if (!Files.isReadable(file)) {
                throw new IllegalStateException("qwen.gateway.shard-tls.trust-certificate: " + file.toAbsolutePath()
                        + " is not a readable file");
            }
        });
        return new ShardTransport(config.trustCertificate());
    }

    /** Sets plaintext or TLS on a channel builder. */
    NettyChannelBuilder apply(NettyChannelBuilder builder) {
        if (trustCertificate.isEmpty()) {
            return builder.usePlaintext();
        }
        try {
            return builder.useTransportSecurity()
                    .sslContext(GrpcSslContexts.forClient().trustManager(trustCertificate.get().toFile()).build());
        } catch (SSLException e) {
            throw new UncheckedIOException("qwen.gateway.shard-tls.trust-certificate: " + trustCertificate.get()
                    + ": " + e.getMessage(), new IOException(e));
        }
    }
}
