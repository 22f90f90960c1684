package qwen.tools;

import static qwen.tools.Figures.log;
import static qwen.tools.Figures.median;
import static qwen.tools.Figures.round;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import qwen.bench.jlama.JlamaRunner;
import qwen.bench.jlama.Qwen2Twin;
import qwen.service.engine.EngineOptions;
import qwen.service.engine.Generator;
import qwen.service.engine.ShardEngine;
import qwen.service.model.RandomCheckpoint;
import qwen.service.sampling.SamplingParams;

/**
 * {@code ./qwen bench}: the CPU engine at Qwen-1.8B shapes on random bf16 weights (generated to a
 * temporary directory unless --model is given): prefill tok/s on a 512-token prompt, decode tok/s
 * for 256 tokens after a 16-token prompt, peak RSS and heap, the machine's streaming-read
 * bandwidth and the decode roofline it implies, then Jlama on the same weights, side by side.
 */
public final class BenchCommand {

    private BenchCommand() {
    }

    public static void main(String[] argv) throws Exception {
        Args a;
        try {
            a = new Args(argv, Set.of("prompt-tokens", "decode-tokens", "threads", "model", "repeats"),
                    Set.of("no-jlama", "keep", "profile"));
        } catch (IllegalArgumentException e) {
            System.err.println("qwen bench: " + e.getMessage());
            System.exit(2);
            return;
        }
        int threads = a.integer("threads", Runtime.getRuntime().availableProcessors());
        int promptTokens = a.integer("prompt-tokens", 512);
        int decodeTokens = a.integer("decode-tokens", 256);
        int repeats = a.integer("repeats", 3);
        Path tmp = null;
        Path model;
        if (a.has("model")) {
            model = Path.of(a.required("model"));
        } else {
            tmp = Files.createTempDirectory("qwen-bench-");
            long t = System.nanoTime();
            model = RandomCheckpoint.qwen18B().writeTo(tmp.resolve("qwen-1_8b-random"));
            log("generated random bf16 Qwen-1.8B-shaped checkpoint in %.1f s: %s", secs(System.nanoTime() - t), model);
        }
        Map<String, Object> report = new LinkedHashMap<>();
        report.put("threads", threads);
        try {
            SplittableRandom rnd = new SplittableRandom(7);
            int[] longPrompt = rnd.ints(promptTokens, 0, 151643).toArray();
            int[] shortPrompt = rnd.ints(16, 0, 151643).toArray();
            if (a.has("profile")) {
                OpProfile.run(model, threads, longPrompt, shortPrompt, decodeTokens);
                return;
            }
            double bandwidth = BandwidthProbe.measure(1L << 30, threads, 5);
            report.put("bandwidth_GBps", round(bandwidth));
            log("streaming-read bandwidth, %d threads: %.1f GB/s", threads, bandwidth);
            ours(model, threads, longPrompt, shortPrompt, decodeTokens, repeats, bandwidth, report);
            if (!a.has("no-jlama")) {
                jlama(model, threads, longPrompt, shortPrompt, decodeTokens, report);
            }
        } finally {
            if (tmp != null && !a.has("keep")) {
                deleteTree(tmp);
            }
        }
        System.out.println(new com.fasterxml.jackson.databind.ObjectMapper().writeValueAsString(report));
    }

    private static void ours(Path model, int threads, int[] longPrompt, int[] shortPrompt, int decodeTokens, int repeats,
                             double bandwidth, Map<String, Object> report) throws Exception {
        SamplingParams greedy = SamplingParams.greedy(0);
        EngineOptions options = new EngineOptions(model, null, EngineOptions.KernelSet.VECTOR, threads, 2L << 30);
        try (ShardEngine engine = ShardEngine.open(options)) {
            long weightBytes = engine.backend().weights().bytesPerToken();
            // A decode step also reads the cache: keys and values (f32) of every layer at every
            // position so far. Step i of the n = decodeTokens - 1 steps after the short prompt reads
            // shortPrompt.length + i positions: on average shortPrompt.length + decodeTokens / 2.
            var config = engine.backend().weights().config();
            long kvBytesPerPosition = 2L * engine.backend().weights().layers().size() * config.projDim() * Float.BYTES;
            long kvBytes = Math.round(kvBytesPerPosition * (shortPrompt.length + decodeTokens / 2.0));
            long bytesPerToken = weightBytes + kvBytes;
            Generator.generate(engine, Arrays.copyOf(shortPrompt, 4), 4, greedy, Set.of(), id -> { });   // warm-up
            double[] prefill = new double[repeats];
            double[] decode = new double[repeats];
            double[] runBandwidth = new double[repeats];
            double[] runFraction = new double[repeats];
            for (int r = 0; r < repeats; r++) {
                Generator.Result p = Generator.generate(engine, longPrompt, 1, greedy, Set.of(), id -> { });
                prefill[r] = longPrompt.length / secs(p.prefillNanos());
                // The machine's bandwidth drifts (a shared host): each decode run is set against a
                // probe taken just before it, as well as against the one at the start.
                runBandwidth[r] = BandwidthProbe.measure(1L << 30, threads, 3);
                Generator.Result d = Generator.generate(engine, shortPrompt, decodeTokens, greedy, Set.of(), id -> { });
                decode[r] = (d.ids().length - 1) / secs(d.decodeNanos());
                runFraction[r] = decode[r] * bytesPerToken / (runBandwidth[r] * 1e9);
                log("ours, run %d: prefill %d tokens %.2f tok/s; decode %d tokens %.2f tok/s, %.0f%% of the roofline "
                                + "of a %.1f GB/s probe just before it", r + 1, longPrompt.length, prefill[r],
                        d.ids().length - 1, decode[r], 100 * runFraction[r], runBandwidth[r]);
            }
            double roofline = bandwidth * 1e9 / bytesPerToken;
            double prefillMedian = median(prefill);
            double decodeMedian = median(decode);
            report.put("bytes_per_token", bytesPerToken);
            report.put("weight_bytes_per_token", weightBytes);
            report.put("kv_bytes_per_token", kvBytes);
            report.put("roofline_tok_s", round(roofline));
            report.put("prefill_tok_s", round(prefillMedian));
            report.put("decode_tok_s", round(decodeMedian));
            report.put("decode_fraction_of_roofline", round(decodeMedian / roofline));
            report.put("run_bandwidth_GBps", Arrays.stream(runBandwidth).map(Figures::round).toArray());
            report.put("decode_fraction_of_run_roofline", round(median(runFraction)));
            report.put("prefill_over_decode", round(prefillMedian / decodeMedian));
            report.put("peak_rss_MB", peakRssMb());
            report.put("peak_heap_MB", peakHeapMb());
            report.put("live_heap_MB", liveHeapMb());
            log("ours (median of %d): prefill %.2f tok/s, decode %.2f tok/s = %.0f%% of the %.2f tok/s roofline "
                            + "(%.2f GB/token: %.2f of weights, %.3f of KV cache; %.0f%% against each run's own probe, median); prefill/decode %.2fx; "
                            + "peak RSS %d MB (the mapped weights and the probe buffer included), "
                            + "peak heap %d MB (garbage included), live heap after GC %d MB",
                    repeats, prefillMedian, decodeMedian, 100 * decodeMedian / roofline, roofline, bytesPerToken / 1e9,
                    weightBytes / 1e9, kvBytes / 1e9,
                    100 * median(runFraction), prefillMedian / decodeMedian, peakRssMb(), peakHeapMb(), liveHeapMb());
        }
    }

    private static void jlama(Path model, int threads, int[] longPrompt, int[] shortPrompt, int decodeTokens,
                              Map<String, Object> report) throws IOException {
        Path twin = Files.createTempDirectory("qwen-bench-jlama-");
        try {
            long t = System.nanoTime();
            Qwen2Twin.write(model, twin);
            log("wrote the Qwen2-layout twin for Jlama in %.1f s", secs(System.nanoTime() - t));
            JlamaRunner.Result j = JlamaRunner.run(twin, longPrompt, shortPrompt, decodeTokens, threads);
            report.put("jlama_prefill_tok_s", round(j.prefillTokPerSec()));
            report.put("jlama_decode_tok_s", round(j.decodeTokPerSec()));
            double prefillRatio = ((Number) report.get("prefill_tok_s")).doubleValue() / j.prefillTokPerSec();
            double decodeRatio = ((Number) report.get("decode_tok_s")).doubleValue() / j.decodeTokPerSec();
            report.put("prefill_vs_jlama", round(prefillRatio));
            report.put("decode_vs_jlama", round(decodeRatio));
            log("Jlama 0.8.4 on the same weights: prefill %.2f tok/s, decode %.2f tok/s; ours is %.2fx (prefill) and "
                    + "%.2fx (decode)", j.prefillTokPerSec(), j.decodeTokPerSec(), prefillRatio, decodeRatio);
        } finally {
            deleteTree(twin);
        }
    }

    private static long peakRssMb() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) {
                    return Long.parseLong(line.replaceAll("\\D", "")) / 1024;
                }
            }
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
        return -1;
    }

    private static long peakHeapMb() {
        long peak = 0;
        for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
            if (pool.getType() == MemoryType.HEAP) {
                peak += pool.getPeakUsage().getUsed();
            }
        }
        return peak >> 20;
    }

    /** Heap the engine really holds: used heap right after a full collection, with the model loaded. */
    private static long liveHeapMb() {
        System.gc();
        return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed() >> 20;
    }

    private static double secs(long nanos) {
        return nanos / 1e9;
    }

    private static void deleteTree(Path root) throws IOException {
        try (Stream<Path> paths = Files.walk(root)) {
            for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
