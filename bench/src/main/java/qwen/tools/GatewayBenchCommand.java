package qwen.tools;

import static qwen.tools.Figures.log;
import static qwen.tools.Figures.median;
import static qwen.tools.Figures.round;

import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.StatusRuntimeException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import qwen.proto.chat.v1.ChatEvent;
import qwen.proto.chat.v1.ChatMessage;
import qwen.proto.chat.v1.ChatRequest;
import qwen.proto.chat.v1.ChatServiceGrpc;
import qwen.proto.chat.v1.GenerationParams;
import qwen.proto.chat.v1.Role;
import qwen.service.engine.EngineOptions;
import qwen.service.engine.Generator;
import qwen.service.engine.ShardEngine;
import qwen.service.model.ModelDirectory;
import qwen.service.model.RandomCheckpoint;
import qwen.service.sampling.SamplingParams;

/**
 * {@code ./qwen bench-gateway}: what the gateway and the pipeline cost. Decode tok/s of the engine
 * called in-process, then through the gateway over gRPC with one shard holding every layer, then
 * with two shards splitting the layers, on the same weights and thread count. Random bf16 weights
 * at Qwen-1.8B shapes unless --model is given.
 */
public final class GatewayBenchCommand {

    private GatewayBenchCommand() {
    }

    public static void main(String[] argv) throws Exception {
        Args a = new Args(argv, Set.of("model", "threads", "tokens", "root", "repeats"), Set.of("keep"));
        int threads = a.integer("threads", Runtime.getRuntime().availableProcessors());
        int tokens = a.integer("tokens", 64);
        int repeats = a.integer("repeats", 3);
        Path root = Path.of(a.get("root", ".")).toAbsolutePath().normalize();
        Path tmp = Files.createTempDirectory("qwen-bench-gateway-");
        Path model = a.has("model") ? Path.of(a.required("model"))
                : RandomCheckpoint.qwen18B().writeTo(tmp.resolve("qwen-1_8b-random"));
        int layers = ModelDirectory.open(model).config().numLayers();
        Map<String, Object> report = new LinkedHashMap<>();
        report.put("threads", threads);
        report.put("tokens", tokens);
        report.put("repeats", repeats);
        try {
            double direct = direct(model, threads, tokens, repeats);
            report.put("direct_decode_tok_s", round(direct));
            log("engine in-process: %.2f tok/s", direct);
            double one = throughGateway(root, tmp.resolve("one"), model, List.of("0-" + (layers - 1)), threads, tokens, repeats);
            report.put("gateway_1_shard_decode_tok_s", round(one));
            report.put("gateway_1_shard_overhead", round(1 - one / direct));
            log("gateway + 1 shard over gRPC: %.2f tok/s (%.1f%% below in-process)", one, 100 * (1 - one / direct));
            int half = layers / 2;
            double two = throughGateway(root, tmp.resolve("two"), model,
                    List.of("0-" + (half - 1), half + "-" + (layers - 1)), threads, tokens, repeats);
            report.put("gateway_2_shards_decode_tok_s", round(two));
            report.put("gateway_2_shards_overhead", round(1 - two / direct));
            log("gateway + 2 shards over gRPC: %.2f tok/s (%.1f%% below in-process)", two, 100 * (1 - two / direct));
        } finally {
            if (!a.has("keep")) {
                try (var paths = Files.walk(tmp)) {
                    paths.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
                }
            }
        }
        System.out.println(new com.fasterxml.jackson.databind.ObjectMapper().writeValueAsString(report));
    }

    /**
     * Decode tok/s of the engine called directly: a short prompt, then {@code tokens} greedy steps;
     * the median of {@code repeats} runs after a warm-up run of the same length, as through the gateway.
     */
    private static double direct(Path model, int threads, int tokens, int repeats) {
        int[] prompt = {151644, 8948, 198, 2610, 525, 264, 10950, 17847, 13, 151645, 198, 151644, 872, 198, 9707,
            151645, 198, 151644, 77091, 198};
        try (ShardEngine engine = ShardEngine.open(new EngineOptions(model, null, EngineOptions.KernelSet.VECTOR,
                threads, 1L << 30))) {
            double[] runs = new double[repeats];
            for (int i = -1; i < repeats; i++) {                      // run -1 warms the JIT up
                Generator.Result r = Generator.generate(engine, prompt, tokens, SamplingParams.greedy(0), Set.of(), id -> { });
                double tokPerSec = (r.ids().length - 1) / (r.decodeNanos() / 1e9);
                if (i >= 0) {
                    runs[i] = tokPerSec;
                    log("  engine in-process, run %d: %.2f tok/s", i + 1, tokPerSec);
                }
            }
            return median(runs);
        }
    }

    /** Decode tok/s seen by a gRPC client of a gateway over the given shard layer ranges. */
    private static double throughGateway(Path root, Path logs, Path model, List<String> ranges, int threads,
                                         int tokens, int repeats) throws Exception {
        try (LocalProcesses procs = new LocalProcesses(root, logs)) {
            List<Integer> ports = new java.util.ArrayList<>();
            for (String range : ranges) {
                ports.add(procs.shard(model, range, threads, Duration.ofMinutes(3)));
            }
            int gateway = procs.gateway(ports, Duration.ofMinutes(2));
            ManagedChannel channel = ManagedChannelBuilder.forAddress("127.0.0.1", gateway).usePlaintext().build();
            try {
                ChatServiceGrpc.ChatServiceBlockingStub stub = ChatServiceGrpc.newBlockingStub(channel);
                retry(() -> chat(stub, 4));                                     // waits for the shards
                chat(stub, tokens);                                             // warms the JIT up
                double[] runs = new double[repeats];
                for (int i = 0; i < repeats; i++) {
                    runs[i] = chat(stub, tokens);
                    log("  %d shard(s), run %d: %.2f tok/s", ranges.size(), i + 1, runs[i]);
                }
                return median(runs);
            } finally {
                channel.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
            }
        }
    }

    /** One stateless greedy turn; tok/s from the first token to the last. */
    private static double chat(ChatServiceGrpc.ChatServiceBlockingStub stub, int tokens) {
        ChatRequest request = ChatRequest.newBuilder()
                .addMessages(ChatMessage.newBuilder().setRole(Role.ROLE_USER).setContent("Hello"))
                .setParams(GenerationParams.newBuilder().setGreedy(true).setMaxNewTokens(tokens))
                .build();
        Iterator<ChatEvent> events = stub.chat(request);
        long first = 0;
        int generated = 0;
        long last = 0;
        while (events.hasNext()) {
            ChatEvent e = events.next();
            if (e.hasDelta() && e.getDelta().getTokenIdsCount() > 0) {
                last = System.nanoTime();
                if (first == 0) {
                    first = last;
                }
                generated += e.getDelta().getTokenIdsCount();
            }
        }
        if (generated < 2) {
            throw new IllegalStateException("the model stopped after " + generated + " tokens; nothing to time");
        }
        return (generated - 1) / ((last - first) / 1e9);
    }

    private static double retry(java.util.concurrent.Callable<Double> call) throws Exception {
        for (int attempt = 0; ; attempt++) {
            try {
                return call.call();
            } catch (StatusRuntimeException e) {
                if (attempt == 30) {
                    throw e;
                }
                Thread.sleep(1000);
            }
        }
    }
}
