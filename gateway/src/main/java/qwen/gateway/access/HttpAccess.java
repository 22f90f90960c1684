package qwen.gateway.access;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Singleton;
import java.util.Set;
import org.jboss.logging.Logger;
import qwen.gateway.openai.OpenAiError;

/**
 * API keys on the HTTP port: every path but {@code /q/} (health and metrics, for probes and
 * scrapers) needs {@code Authorization: Bearer <key>} when keys are on; refusals are 401 in
 * OpenAI's error shape. A key's generations count against its cap until the response ends (a
 * streamed one included) or the client goes away.
 */
@Singleton
class HttpAccess {

    private static final Logger LOG = Logger.getLogger(HttpAccess.class);
    /** Before the REST routes. */
    private static final int ORDER = -100;
    private static final Set<String> GENERATING = Set.of("/v1/chat/completions", "/v1/completions");

    private final AccessControl access;
    private final ObjectMapper json;

    HttpAccess(AccessControl access, ObjectMapper json) {
        this.access = access;
        this.json = json;
    }

    void install(@Observes Router router) {
        if (access.enabled()) {
            router.route().order(ORDER).handler(this::filter);
        }
    }

    private void filter(RoutingContext ctx) {
        String path = ctx.normalizedPath();
        if (path.startsWith("/q/")) {
            ctx.next();
            return;
        }
        AccessControl.Verdict verdict = access.check(ctx.request().getHeader(HttpHeaders.AUTHORIZATION));
        if (!verdict.allowed()) {
            LOG.debugf("refused %s %s: %s API key", ctx.request().method(), path, verdict.refusal());
            ctx.response().putHeader("WWW-Authenticate", "Bearer");
            send(ctx, 401, OpenAiError.of(verdict.message(), "invalid_request_error", null,
                    verdict.refusal() == AccessControl.Refusal.MISSING ? "missing_api_key" : "invalid_api_key"));
            return;
        }
        if (ctx.request().method() == HttpMethod.POST && GENERATING.contains(path)) {
            ConcurrencyCap.Permit permit = access.cap().tryAcquire(verdict.caller());
            if (permit == null) {
                ctx.response().putHeader("Retry-After", "1");
                send(ctx, 429, OpenAiError.of(access.capMessage(verdict.caller()), "rate_limit_exceeded", null,
                        "concurrency_limit_exceeded"));
                return;
            }
            ctx.addEndHandler(done -> permit.close());
        }
        ctx.next();
    }

    private void send(RoutingContext ctx, int status, OpenAiError error) {
        String body;
        try {
            body = json.writeValueAsString(error);
        } catch (JsonProcessingException e) {
            body = "{\"error\":{\"message\":\"refused\"}}";
        }
        ctx.response().setStatusCode(status).putHeader(HttpHeaders.CONTENT_TYPE, "application/json").end(body);
    }
}
