package qwen.tools;

import static qwen.tools.Figures.log;
import static qwen.tools.Figures.percentile;
import static qwen.tools.Figures.round;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import qwen.proto.chat.v1.ChatEvent;
import qwen.proto.chat.v1.ChatMessage;
import qwen.proto.chat.v1.ChatRequest;
import qwen.proto.chat.v1.ChatServiceGrpc;
import qwen.proto.chat.v1.GenerationParams;
import qwen.proto.chat.v1.Role;
import qwen.service.model.ModelDirectory;
import qwen.service.model.RandomCheckpoint;

/**
 * {@code ./qwen load}: a load generator. Starts one shard holding every layer (or two splitting
 * them) and a gateway on loopback, then for each concurrency N runs N streaming gRPC chats at once,
 * each {@code --requests} turns in a row, and reports aggregate output tok/s, time to first token
 * and inter-token latency (p50, p99) and errors. Every level is bounded by {@code --max-seconds}:
 * streams still running then are cancelled and counted. Random bf16 weights at Qwen-1.8B shapes
 * unless {@code --model} is given.
 */
public final class LoadCommand {

    private LoadCommand() {
    }

    public static void main(String[] argv) throws Exception {
        Args a = new Args(argv, Set.of("model", "threads", "tokens", "root", "concurrency", "requests",
                "max-seconds", "shards", "kv-budget-mb", "micro-batches"), Set.of("keep"));
        int threads = a.integer("threads", Runtime.getRuntime().availableProcessors());
        int tokens = a.integer("tokens", 32);
        int requests = a.integer("requests", 1);
        int maxSeconds = a.integer("max-seconds", 300);
        int shardCount = a.integer("shards", 1);
        int kvBudgetMb = a.integer("kv-budget-mb", 3072);
        int microBatches = a.integer("micro-batches", 0);
        int[] levels = a.has("concurrency") ? a.integers("concurrency") : new int[] {1, 4, 16, 64};
        if (tokens < 2 || requests < 1 || maxSeconds < 1 || shardCount < 1 || shardCount > 2
                || microBatches < 0 || Arrays.stream(levels).anyMatch(n -> n < 1 || n > 1024)) {
            throw new IllegalArgumentException("need --tokens >= 2, --requests >= 1, --max-seconds >= 1, --shards 1 or 2,"
                    + " --concurrency values in 1..1024");
        }
        Path root = Path.of(a.get("root", ".")).toAbsolutePath().normalize();
        Path tmp = Files.createTempDirectory("qwen-load-");
        int maxLevel = Arrays.stream(levels).max().orElseThrow();
        Map<String, Object> report = new LinkedHashMap<>();
        try {
            Path model = a.has("model") ? Path.of(a.required("model"))
                    : RandomCheckpoint.qwen18B().writeTo(tmp.resolve("qwen-1_8b-random"));
            int layers = ModelDirectory.open(model).config().numLayers();
            List<String> ranges = shardCount == 1 ? List.of("0-" + (layers - 1))
                    : List.of("0-" + (layers / 2 - 1), layers / 2 + "-" + (layers - 1));
            report.put("model", a.has("model") ? model.toString() : "random bf16, Qwen-1.8B shapes");
            report.put("shards", ranges);
            report.put("threads", threads);
            report.put("max_new_tokens", tokens);
            report.put("requests_per_stream", requests);
            report.put("pipeline_micro_batches", microBatches);
            try (LocalProcesses procs = new LocalProcesses(root, tmp.resolve("logs"))) {
                List<Integer> ports = new ArrayList<>();
                for (String range : ranges) {
                    ports.add(procs.shard(model, range, threads, List.of("qwen.shard.kv-budget-mb=" + kvBudgetMb),
                            Duration.ofMinutes(3)));
                }
                // A loaded 2-core machine can take minutes over one step of many prompts' first chunks.
                int gateway = procs.gateway(ports, List.of("qwen.gateway.max-queued-requests=" + Math.max(64, 2 * maxLevel),
                        "qwen.gateway.step-timeout=600s", "qwen.gateway.pipeline-micro-batches=" + microBatches),
                        Duration.ofMinutes(2));
                ManagedChannel channel = ManagedChannelBuilder.forAddress("127.0.0.1", gateway).usePlaintext().build();
                try {
                    ChatServiceGrpc.ChatServiceStub stub = ChatServiceGrpc.newStub(channel);
                    warmUp(stub);
                    List<Map<String, Object>> rows = new ArrayList<>();
                    log("%5s %10s %9s %9s %9s %9s %7s %5s %7s", "N", "out tok/s", "TTFT p50", "TTFT p99", "ITL p50",
                            "ITL p99", "tokens", "cut", "errors");
                    for (int n : levels) {
                        Level level = runLevel(stub, n, requests, tokens, Duration.ofSeconds(maxSeconds));
                        Map<String, Object> row = level.summary();
                        rows.add(row);
                        log("%5d %10.2f %8.2fs %8.2fs %7.0fms %7.0fms %7d %5d %7s", n, row.get("output_tok_s"),
                                row.get("ttft_p50_s"), row.get("ttft_p99_s"), row.get("itl_p50_ms"),
                                row.get("itl_p99_ms"), row.get("output_tokens"), row.get("cut_at_time_limit"),
                                row.get("errors"));
                    }
                    report.put("levels", rows);
                } finally {
                    channel.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
                }
            }
        } finally {
            if (!a.has("keep")) {
                try (var paths = Files.walk(tmp)) {
                    paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
                }
            }
        }
        System.out.println(new ObjectMapper().writeValueAsString(report));
    }

    /** One short turn, retried while the gateway still connects to its shards. */
    private static void warmUp(ChatServiceGrpc.ChatServiceStub stub) throws Exception {
        for (int attempt = 0; ; attempt++) {
            Level level = runLevel(stub, 1, 1, 4, Duration.ofMinutes(2));
            if (level.errors.isEmpty()) {
                return;
            }
            if (attempt == 30) {
                throw new IllegalStateException("the gateway does not answer: " + level.errors);
            }
            Thread.sleep(1000);
        }
    }

    private static Level runLevel(ChatServiceGrpc.ChatServiceStub stub, int streams, int requests, int tokens,
                                  Duration limit) throws InterruptedException {
        Level level = new Level(streams);
        CountDownLatch done = new CountDownLatch(streams);
        List<Stream> all = new ArrayList<>();
        level.startNanos = System.nanoTime();
        for (int i = 0; i < streams; i++) {
            Stream stream = new Stream(stub, level, i, requests, tokens, done);
            all.add(stream);
            stream.next();
        }
        if (!done.await(limit.toNanos(), TimeUnit.NANOSECONDS)) {
            all.forEach(Stream::cutOff);
            done.await(30, TimeUnit.SECONDS);
        }
        level.endNanos = System.nanoTime();
        return level;
    }

    /** What one concurrency level measured; the streams' callbacks add to it. */
    private static final class Level {
        final int streams;
        final List<Double> ttftSeconds = new ArrayList<>();
        final List<Double> itlMillis = new ArrayList<>();
        final Map<String, Integer> errors = new TreeMap<>();
        long outputTokens;
        int completed;
        int cut;
        long startNanos;
        long endNanos;

        Level(int streams) {
            this.streams = streams;
        }

        synchronized void firstToken(double seconds) {
            ttftSeconds.add(seconds);
        }

        synchronized void tokens(int count, double gapMillis) {
            outputTokens += count;
            for (int i = 0; i < count && gapMillis >= 0; i++) {
                itlMillis.add(gapMillis / count);
            }
        }

        synchronized void ended(Status.Code code, boolean cutOff) {
            if (cutOff && code == Status.Code.CANCELLED) {
                cut++;
            } else if (code == Status.Code.OK) {
                completed++;
            } else {
                errors.merge(code.name(), 1, Integer::sum);
            }
        }

        synchronized Map<String, Object> summary() {
            double seconds = (endNanos - startNanos) / 1e9;
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("concurrency", streams);
            row.put("seconds", round(seconds));
            row.put("completed_requests", completed);
            row.put("cut_at_time_limit", cut);
            row.put("output_tokens", outputTokens);
            row.put("output_tok_s", round(outputTokens / seconds));
            row.put("ttft_p50_s", round(percentile(ttftSeconds, 50)));
            row.put("ttft_p99_s", round(percentile(ttftSeconds, 99)));
            row.put("itl_p50_ms", round(percentile(itlMillis, 50)));
            row.put("itl_p99_ms", round(percentile(itlMillis, 99)));
            row.put("errors", errors.isEmpty() ? "0" : errors.toString());
            return row;
        }
    }

    /** One client: its turns one after another, each a streamed Chat call. */
    private static final class Stream implements ClientResponseObserver<ChatRequest, ChatEvent> {
        private final ChatServiceGrpc.ChatServiceStub stub;
        private final Level level;
        private final int index;
        private final int tokens;
        private final CountDownLatch done;
        private int left;
        private long sentNanos;
        private long lastNanos;
        private volatile ClientCallStreamObserver<ChatRequest> call;
        private volatile boolean cut;

        Stream(ChatServiceGrpc.ChatServiceStub stub, Level level, int index, int requests, int tokens,
               CountDownLatch done) {
            this.stub = stub;
            this.level = level;
            this.index = index;
            this.left = requests;
            this.tokens = tokens;
            this.done = done;
        }

        /** Sends the next turn, or counts the stream done. */
        void next() {
            if (left-- == 0 || cut) {
                done.countDown();
                return;
            }
            ChatRequest request = ChatRequest.newBuilder()
                    .addMessages(ChatMessage.newBuilder().setRole(Role.ROLE_USER)
                            .setContent("Tell me a story about the number " + index + "."))
                    // Sampled, not greedy, so the streams differ; random weights almost never stop early.
                    .setParams(GenerationParams.newBuilder().setMaxNewTokens(tokens).setTemperature(0.7f)
                            .setSeed(index + 1L))
                    .build();
            sentNanos = System.nanoTime();
            lastNanos = 0;
            stub.chat(request, this);
        }

        void cutOff() {
            cut = true;
            ClientCallStreamObserver<ChatRequest> current = call;
            if (current != null) {
                current.cancel("the level's time is up", null);
            }
        }

        @Override
        public void beforeStart(ClientCallStreamObserver<ChatRequest> requestStream) {
            call = requestStream;
        }

        @Override
        public void onNext(ChatEvent event) {
            if (!event.hasDelta() || event.getDelta().getTokenIdsCount() == 0) {
                return;
            }
            long now = System.nanoTime();
            if (lastNanos == 0) {
                level.firstToken((now - sentNanos) / 1e9);
                level.tokens(1, -1);
                if (event.getDelta().getTokenIdsCount() > 1) {
                    level.tokens(event.getDelta().getTokenIdsCount() - 1, 0);
                }
            } else {
                level.tokens(event.getDelta().getTokenIdsCount(), (now - lastNanos) / 1e6);
            }
            lastNanos = now;
        }

        @Override
        public void onError(Throwable failure) {
            level.ended(failure instanceof StatusRuntimeException e ? e.getStatus().getCode() : Status.Code.UNKNOWN, cut);
            next();
        }

        @Override
        public void onCompleted() {
            level.ended(Status.Code.OK, false);
            next();
        }
    }
}
