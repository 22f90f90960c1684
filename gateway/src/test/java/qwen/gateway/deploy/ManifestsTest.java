package qwen.gateway.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import qwen.gateway.chat.ChatEngine;
import qwen.gateway.metrics.GenerationMetrics;
import qwen.gateway.routing.ReplicaAddresses;
import qwen.gateway.tokenizer.QwenTokenizer;

/**
 * The Kubernetes overlays, rendered with {@code kubectl kustomize}: every manifest validates
 * against the Kubernetes OpenAPI schemas (k8s/validate/run), and the invariants hold that schemas
 * cannot check: the shard stages' layer ranges cover the model, ports and probe paths are the
 * applications' own, every container has limits, only gateways reach shards.
 *
 * <p>Needs kubectl and Node.js (.ci/run installs them); without kubectl the test is skipped and
 * says so.
 */
@Timeout(300)
class ManifestsTest {

    /** Qwen-1_8B-Chat, the model the overlays serve (QWEN_SHARD_MODEL_ID). */
    private static final String MODEL_ID = "Qwen/Qwen-1_8B-Chat";
    private static final int MODEL_LAYERS = 24;
    private static final Set<String> HEALTH_PATHS = Set.of("/q/health/live", "/q/health/ready", "/q/health/started");

    private static Properties gateway;
    private static Properties service;

    @BeforeAll
    static void requireKubectl() throws IOException {
        assumeTrue(onPath("kubectl"), "kubectl is not installed (apt-get install kubernetes-client; .ci/run does): "
                + "the manifests are not checked");
        gateway = properties(Path.of("src", "main", "resources", "application.properties"));
        service = properties(Path.of("..", "service", "src", "main", "resources", "application.properties"));
    }

    @Test
    void everyRenderedManifestValidatesAgainstTheKubernetesSchemas() throws Exception {
        Process process = new ProcessBuilder(Manifests.K8S.resolve("validate").resolve("run").toString())
                .redirectErrorStream(true).start();
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(process.waitFor(240, TimeUnit.SECONDS), "k8s/validate/run timed out");
        assertEquals(0, process.exitValue(), "k8s/validate/run:\n" + output);
        assertTrue(output.contains("cpu: ") && output.contains("gpu: ") && output.contains("cpu-tls: "), output);
        assertFalse(output.contains(" 0 manifests valid"), output);
    }

    @ParameterizedTest
    @ValueSource(strings = {"cpu", "gpu", "cpu-tls"})
    void shardStagesCoverTheModelAndTheGatewayDialsEachStage(String overlay) throws Exception {
        Manifests m = Manifests.render(overlay);
        Map<Integer, Integer> ranges = new TreeMap<>();
        Map<String, JsonNode> stages = new TreeMap<>();
        for (JsonNode sts : m.ofKind("StatefulSet")) {
            JsonNode shard = container(sts, "shard");
            assertEquals(MODEL_ID, Manifests.env(shard, "QWEN_SHARD_MODEL_ID"), Manifests.name(sts));
            String[] layers = Manifests.env(shard, "QWEN_SHARD_LAYERS").split("-");
            int first = Integer.parseInt(layers[0]);
            int last = Integer.parseInt(layers[1]);
            assertTrue(first <= last, Manifests.name(sts) + " layers " + first + "-" + last);
            assertEquals(null, ranges.put(first, last), "two stages start at layer " + first);
            stages.put(Manifests.name(sts), sts);
        }
        int next = 0;
        for (Map.Entry<Integer, Integer> range : ranges.entrySet()) {
            assertEquals(next, range.getKey(), "the stages leave a gap or overlap before layer " + range.getKey());
            next = range.getValue() + 1;
        }
        assertEquals(MODEL_LAYERS, next, "the stages end at layer " + (next - 1) + " of " + MODEL_LAYERS);

        JsonNode gatewayContainer = container(m.named("Deployment", "qwen-gateway"), "gateway");
        JsonNode config = m.named("ConfigMap", "qwen-gateway").path("data");
        int replicas = Integer.parseInt(config.path("QWEN_GATEWAY_ROUTING_REPLICAS").asText("1"));
        List<String> template = List.of(config.path("QWEN_GATEWAY_SHARDS").asText().split(","));
        ReplicaAddresses.check(template, replicas);
        for (JsonNode sts : stages.values()) {
            assertEquals(replicas, sts.path("spec").path("replicas").asInt(),
                    Manifests.name(sts) + " must have one pod per pipeline replica");
        }
        Set<String> dialled = new HashSet<>();
        for (int r = 0; r < replicas; r++) {
            for (String address : ReplicaAddresses.of(template, r)) {
                String host = address.substring(0, address.lastIndexOf(':'));
                int port = Integer.parseInt(address.substring(address.lastIndexOf(':') + 1));
                String[] parts = host.split("\\.");
                String service = parts[1];
                JsonNode sts = stages.get(service);
                assertNotNull(sts, address + " names no StatefulSet " + service);
                assertEquals(service, sts.path("spec").path("serviceName").asText());
                assertEquals(service + "-" + r, parts[0], address + " is not pod " + r + " of " + service);
                assertEquals(Manifests.port(container(sts, "shard"), "grpc"), port, address);
                dialled.add(service);
                JsonNode headless = m.named("Service", service);
                assertEquals("None", headless.path("spec").path("clusterIP").asText(), service + " must be headless");
            }
        }
        assertEquals(stages.keySet(), dialled, "the gateway dials one pod of every stage");
        assertNotNull(gatewayContainer);
    }

    @ParameterizedTest
    @ValueSource(strings = {"cpu", "gpu", "cpu-tls"})
    void portsAndProbePathsAreTheApplicationsOwn(String overlay) throws Exception {
        Manifests m = Manifests.render(overlay);
        JsonNode gw = container(m.named("Deployment", "qwen-gateway"), "gateway");
        assertEquals(Integer.parseInt(gateway.getProperty("quarkus.http.port")), Manifests.port(gw, "http"));
        assertEquals(Integer.parseInt(gateway.getProperty("quarkus.grpc.server.port")), Manifests.port(gw, "grpc"));
        for (JsonNode sts : m.ofKind("StatefulSet")) {
            JsonNode shard = container(sts, "shard");
            assertEquals(Integer.parseInt(service.getProperty("quarkus.http.port")), Manifests.port(shard, "http"));
            assertEquals(Integer.parseInt(service.getProperty("quarkus.grpc.server.port")), Manifests.port(shard, "grpc"));
        }
        for (JsonNode workload : m.workloads()) {
            for (JsonNode c : workload.path("spec").path("template").path("spec").path("containers")) {
                String where = overlay + " " + Manifests.name(workload) + "/" + c.path("name").asText();
                for (String probe : List.of("startupProbe", "livenessProbe", "readinessProbe")) {
                    JsonNode get = c.path(probe).path("httpGet");
                    assertFalse(get.isMissingNode(), where + " has no HTTP " + probe);
                    assertTrue(HEALTH_PATHS.contains(get.path("path").asText()), where + " " + probe + " " + get);
                    assertEquals("http", get.path("port").asText(), where + " " + probe + " must probe the http port");
                }
                assertEquals("/q/health/live", c.path("livenessProbe").path("httpGet").path("path").asText(), where);
                assertEquals("/q/health/ready", c.path("readinessProbe").path("httpGet").path("path").asText(), where);
            }
        }
        for (JsonNode svc : m.ofKind("Service")) {
            JsonNode selected = selectedContainer(m, svc);
            for (JsonNode port : svc.path("spec").path("ports")) {
                String target = port.path("targetPort").asText();
                assertTrue(Manifests.port(selected, target) > 0, Manifests.name(svc) + " targets no port named " + target);
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"cpu", "gpu", "cpu-tls"})
    void everyContainerHasLimitsAndGpuShardsAskForAGpu(String overlay) throws Exception {
        Manifests m = Manifests.render(overlay);
        for (JsonNode workload : m.workloads()) {
            JsonNode pod = workload.path("spec").path("template").path("spec");
            List<JsonNode> containers = new ArrayList<>();
            pod.path("containers").forEach(containers::add);
            pod.path("initContainers").forEach(containers::add);
            for (JsonNode c : containers) {
                String where = overlay + " " + Manifests.name(workload) + "/" + c.path("name").asText();
                JsonNode limits = c.path("resources").path("limits");
                assertTrue(limits.hasNonNull("cpu") && limits.hasNonNull("memory"), where + " lacks cpu/memory limits");
                JsonNode requests = c.path("resources").path("requests");
                assertTrue(requests.hasNonNull("cpu") && requests.hasNonNull("memory"), where + " lacks requests");
            }
        }
        for (JsonNode sts : m.ofKind("StatefulSet")) {
            JsonNode shard = container(sts, "shard");
            boolean gpu = shard.path("resources").path("limits").has("nvidia.com/gpu");
            assertEquals(overlay.equals("gpu"), gpu, overlay + " " + Manifests.name(sts) + " nvidia.com/gpu limit");
            if (gpu) {
                assertEquals("TORNADO", Manifests.env(shard, "QWEN_SHARD_KERNELS"));
                assertEquals(shard.path("resources").path("limits").path("nvidia.com/gpu").asText(),
                        shard.path("resources").path("requests").path("nvidia.com/gpu").asText());
            }
        }
    }

    @Test
    void onlyGatewaysReachTheShardsAndStreamsHaveTimeToDrain() throws Exception {
        Manifests m = Manifests.render("cpu");
        JsonNode policy = m.named("NetworkPolicy", "qwen-shard-ingress");
        assertEquals("qwen-shard", policy.path("spec").path("podSelector").path("matchLabels")
                .path("app.kubernetes.io/name").asText());
        int grpc = Integer.parseInt(service.getProperty("quarkus.grpc.server.port"));
        for (JsonNode rule : policy.path("spec").path("ingress")) {
            boolean grpcRule = false;
            for (JsonNode port : rule.path("ports")) {
                grpcRule |= port.path("port").asInt() == grpc;
            }
            if (grpcRule) {
                assertEquals(1, rule.path("from").size(), "the shard gRPC port has one source");
                assertEquals("qwen-gateway", rule.path("from").get(0).path("podSelector").path("matchLabels")
                        .path("app.kubernetes.io/name").asText());
            }
        }

        JsonNode config = m.named("ConfigMap", "qwen-gateway").path("data");
        Duration drain = Duration.parse("PT" + config.path("QWEN_GATEWAY_DRAIN_TIMEOUT").asText().toUpperCase());
        Duration delay = Duration.parse("PT" + config.path("QUARKUS_SHUTDOWN_DELAY").asText().toUpperCase());
        long grace = m.named("Deployment", "qwen-gateway").path("spec").path("template").path("spec")
                .path("terminationGracePeriodSeconds").asLong();
        assertTrue(grace > drain.plus(delay).toSeconds(), "terminationGracePeriodSeconds " + grace
                + " must exceed the shutdown delay " + delay + " plus the drain timeout " + drain);
        assertEquals("REQUIRED", config.path("QWEN_GATEWAY_ACCESS_MODE").asText(), "the overlays require API keys");
    }

    @Test
    void theAutoscalerScalesOnGaugesTheGatewayExposesAndTheAdapterServes() throws Exception {
        Manifests m = Manifests.render("cpu");
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        new GenerationMetrics(registry).meter(new ChatEngine(QwenTokenizer.bundled(), () -> {
            throw new IllegalStateException("not connected");
        }, 512, 16));
        String adapter = Files.readString(Manifests.K8S.resolve("monitoring").resolve("prometheus-adapter-values.yaml"));
        JsonNode hpa = m.named("HorizontalPodAutoscaler", "qwen-gateway");
        assertEquals("qwen-gateway", hpa.path("spec").path("scaleTargetRef").path("name").asText());
        int pods = 0;
        for (JsonNode metric : hpa.path("spec").path("metrics")) {
            if (!metric.path("type").asText().equals("Pods")) {
                continue;
            }
            pods++;
            String name = metric.path("pods").path("metric").path("name").asText();
            assertNotNull(registry.find(name.replace('_', '.')).gauge(), name + " is no gauge of the gateway");
            assertTrue(adapter.contains("as: \"" + name + "\""), name + " is not served by the adapter rules");
        }
        assertEquals(2, pods, "queue depth and active sequences");

        JsonNode gateway = m.named("Deployment", "qwen-gateway");
        assertTrue(gateway.path("spec").path("replicas").asInt() > 1);
        assertEquals("POSTGRES", m.named("ConfigMap", "qwen-gateway").path("data").path("QWEN_GATEWAY_SESSIONS_STORE").asText(),
                "several gateway replicas share sessions only through the networked store");
    }

    @ParameterizedTest
    @ValueSource(strings = {"cpu", "gpu", "cpu-tls"})
    void withTlsTheShardsServeItAndTheGatewaysTrustTheirAuthority(String overlay) throws Exception {
        Manifests m = Manifests.render(overlay);
        boolean tls = overlay.endsWith("-tls");
        JsonNode gateway = m.named("Deployment", "qwen-gateway");
        String trust = Manifests.env(container(gateway, "gateway"), "QWEN_GATEWAY_SHARD_TLS_TRUST_CERTIFICATE");
        assertEquals(tls, trust != null, overlay + ": the gateway's trust certificate");
        if (tls) {
            assertTrue(mountedFromSecret(gateway, "gateway", trust, "qwen-shard-tls"), trust + " is not from qwen-shard-tls");
        }
        for (JsonNode sts : m.ofKind("StatefulSet")) {
            JsonNode shard = container(sts, "shard");
            String certificate = Manifests.env(shard, "QUARKUS_GRPC_SERVER_SSL_CERTIFICATE");
            String key = Manifests.env(shard, "QUARKUS_GRPC_SERVER_SSL_KEY");
            assertEquals(tls, certificate != null && key != null, overlay + " " + Manifests.name(sts) + " serves TLS");
            if (tls) {
                assertEquals("false", Manifests.env(shard, "QUARKUS_GRPC_SERVER_PLAIN_TEXT"));
                assertTrue(mountedFromSecret(sts, "shard", certificate, "qwen-shard-tls"));
                assertTrue(mountedFromSecret(sts, "shard", key, "qwen-shard-tls"));
            }
        }
    }

    /** Whether {@code file} lies under a mount of a volume made from {@code secret}. */
    private static boolean mountedFromSecret(JsonNode workload, String containerName, String file, String secret) {
        JsonNode pod = workload.path("spec").path("template").path("spec");
        for (JsonNode mount : container(workload, containerName).path("volumeMounts")) {
            if (!file.startsWith(mount.path("mountPath").asText() + "/")) {
                continue;
            }
            for (JsonNode volume : pod.path("volumes")) {
                if (volume.path("name").asText().equals(mount.path("name").asText())
                        && volume.path("secret").path("secretName").asText().equals(secret)) {
                    return true;
                }
            }
        }
        return false;
    }

    private static JsonNode container(JsonNode workload, String name) {
        for (JsonNode c : workload.path("spec").path("template").path("spec").path("containers")) {
            if (name.equals(c.path("name").asText())) {
                return c;
            }
        }
        throw new AssertionError(Manifests.name(workload) + " has no container " + name);
    }

    /** The first container of the workload whose pod labels the Service selects. */
    private static JsonNode selectedContainer(Manifests m, JsonNode svc) {
        JsonNode selector = svc.path("spec").path("selector");
        for (JsonNode workload : m.workloads()) {
            JsonNode labels = workload.path("spec").path("template").path("metadata").path("labels");
            boolean matches = true;
            for (var it = selector.fields(); it.hasNext(); ) {
                var e = it.next();
                matches &= e.getValue().asText().equals(labels.path(e.getKey()).asText());
            }
            if (matches) {
                return workload.path("spec").path("template").path("spec").path("containers").get(0);
            }
        }
        throw new AssertionError("Service " + Manifests.name(svc) + " selects no workload");
    }

    private static Properties properties(Path file) throws IOException {
        Properties p = new Properties();
        try (Reader reader = Files.newBufferedReader(file)) {
            p.load(reader);
        }
        return p;
    }

    private static boolean onPath(String command) {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (Files.isExecutable(Path.of(dir, command))) {
                return true;
            }
        }
        return false;
    }
}
