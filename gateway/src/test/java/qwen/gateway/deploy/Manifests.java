package qwen.gateway.deploy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** One overlay rendered by {@code kubectl kustomize}, as a list of resources. */
record Manifests(String overlay, List<JsonNode> resources) {

    /** The repository's k8s/ directory (tests run in gateway/). */
    static final Path K8S = Path.of("..", "k8s").toAbsolutePath().normalize();

    static Manifests render(String overlay) throws IOException, InterruptedException {
        Process process = new ProcessBuilder("kubectl", "kustomize", K8S.resolve("overlays").resolve(overlay).toString())
                .redirectError(ProcessBuilder.Redirect.DISCARD).start();
        byte[] out = process.getInputStream().readAllBytes();
        if (!process.waitFor(60, TimeUnit.SECONDS) || process.exitValue() != 0) {
            throw new AssertionError("kubectl kustomize k8s/overlays/" + overlay + " failed (exit "
                    + (process.isAlive() ? "timeout" : process.exitValue()) + ")");
        }
        List<JsonNode> resources = new ArrayList<>();
        ObjectMapper yaml = new ObjectMapper(new YAMLFactory());
        try (MappingIterator<JsonNode> docs = yaml.readerFor(JsonNode.class).readValues(new String(out, StandardCharsets.UTF_8))) {
            while (docs.hasNext()) {
                JsonNode doc = docs.next();
                if (doc != null && !doc.isNull() && !doc.isEmpty()) {
                    resources.add(doc);
                }
            }
        }
        return new Manifests(overlay, resources);
    }

    List<JsonNode> ofKind(String kind) {
        return resources.stream().filter(r -> kind.equals(r.path("kind").asText())).toList();
    }

    JsonNode named(String kind, String name) {
        return ofKind(kind).stream().filter(r -> name.equals(r.path("metadata").path("name").asText())).findFirst()
                .orElseThrow(() -> new AssertionError(overlay + ": no " + kind + " " + name));
    }

    /** Every pod template: Deployments' and StatefulSets'. */
    List<JsonNode> workloads() {
        List<JsonNode> out = new ArrayList<>(ofKind("Deployment"));
        out.addAll(ofKind("StatefulSet"));
        return out;
    }

    static String name(JsonNode resource) {
        return resource.path("metadata").path("name").asText();
    }

    /** A container's environment variable, or null. */
    static String env(JsonNode container, String name) {
        for (JsonNode e : container.path("env")) {
            if (name.equals(e.path("name").asText())) {
                return e.path("value").asText();
            }
        }
        return null;
    }

    /** The containerPort of the container's port named {@code name}, or -1. */
    static int port(JsonNode container, String name) {
        for (JsonNode p : container.path("ports")) {
            if (name.equals(p.path("name").asText())) {
                return p.path("containerPort").asInt();
            }
        }
        return -1;
    }
}
