package qwen.gateway.session;

import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;
import java.time.Clock;
import qwen.gateway.GatewayConfig;

/** Makes the session store the gateway runs with: the embedded file store in qwen.gateway.sessions.dir. */
final class SessionStoreProducer {

    @Produces
    @Singleton
    SessionStore sessionStore(GatewayConfig config) {
        return new FileSessionStore(config.sessions().resolvedDir(), Clock.systemUTC());
    }
}
