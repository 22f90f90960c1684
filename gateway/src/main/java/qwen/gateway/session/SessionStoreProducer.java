package qwen.gateway.session;

import jakarta.enterprise.inject.Disposes;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;
import java.time.Clock;
import qwen.gateway.GatewayConfig;

/**
 * Makes the session store the gateway runs with, as qwen.gateway.sessions.store says: the embedded
 * file store in qwen.gateway.sessions.dir, or the PostgreSQL store shared by gateway replicas.
 */
final class SessionStoreProducer {

    @Produces
    @Singleton
    SessionStore sessionStore(GatewayConfig config) {
        GatewayConfig.Sessions sessions = config.sessions();
        return switch (sessions.store()) {
            case FILE -> new FileSessionStore(sessions.resolvedDir(), Clock.systemUTC());
            case POSTGRES -> new PostgresSessionStore(sessions.jdbcUrl().orElseThrow(() -> new IllegalStateException(
                    "qwen.gateway.sessions.store=POSTGRES needs qwen.gateway.sessions.jdbc-url")),
                    sessions.table(), Clock.systemUTC(), sessions.turnLease());
        };
    }

    void close(@Disposes SessionStore store) throws Exception {
        if (store instanceof AutoCloseable closeable) {
            closeable.close();
        }
    }
}
