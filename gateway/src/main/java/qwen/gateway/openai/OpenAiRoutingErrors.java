package qwen.gateway.openai;

import jakarta.ws.rs.NotAcceptableException;
import jakarta.ws.rs.NotAllowedException;
import jakarta.ws.rs.NotFoundException;
import jakarta.ws.rs.NotSupportedException;
import jakarta.ws.rs.WebApplicationException;
import jakarta.ws.rs.core.Response;
import jakarta.ws.rs.core.UriInfo;
import org.jboss.resteasy.reactive.server.ServerExceptionMapper;

/**
 * OpenAI's error JSON for requests to the OpenAI paths that fail before they reach a method of
 * {@link OpenAiResource} (an unknown path under {@code /v1/}, a wrong HTTP method, a Content-Type
 * other than JSON), which that class's own mapper cannot see. Requests to other paths get JAX-RS's
 * default answer unchanged.
 */
public class OpenAiRoutingErrors {

    @ServerExceptionMapper({NotFoundException.class, NotAllowedException.class, NotSupportedException.class,
            NotAcceptableException.class})
    public Response routing(WebApplicationException failure, UriInfo uri) {
        String path = uri.getPath();
        boolean openAi = path.startsWith("/v1/") || path.equals("/tokenize") || path.equals("/detokenize");
        return openAi ? OpenAiErrors.toResponse(failure) : failure.getResponse();
    }
}
