package dev.starserve.cli;

import dev.starserve.backend.Quantization;
import dev.starserve.bench.ForwardBench;
import dev.starserve.bench.QuantizeAccuracy;
import dev.starserve.bench.serve.Api;
import dev.starserve.bench.serve.ServeBench;
import dev.starserve.bench.serve.ServeBenchConfig;
import dev.starserve.bench.serve.ServeBenchReport;
import dev.starserve.bench.serve.Target;
import dev.starserve.generate.TeacherForcedComparison;
import dev.starserve.model.GptBigCodeModel;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Unmatched;

/** Benchmarks. */
@Command(
    name = "bench",
    mixinStandardHelpOptions = true,
    description = "Benchmarks (see benchmarks/README.md).",
    subcommands = {
      BenchCommand.Forward.class,
      BenchCommand.EngineSpeed.class,
      BenchCommand.QuantizeAccuracyCheck.class,
      BenchCommand.TokenizerSpeed.class,
      BenchCommand.Limits.class,
      BenchCommand.Jmh.class,
      BenchCommand.Serve.class
    })
final class BenchCommand implements Runnable {
  @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(System.err);
  }

  @Command(
      name = "forward",
      mixinStandardHelpOptions = true,
      description = "Prefill and single-stream decode tokens/s of the bare forward pass.")
  static final class Forward implements Callable<Integer> {
    @Option(names = "--model", required = true, description = "model directory")
    Path model;

    @Option(names = "--prompt-len", defaultValue = "128", description = "default: ${DEFAULT-VALUE}")
    int promptLen;

    @Option(names = "--gen-len", defaultValue = "64", description = "default: ${DEFAULT-VALUE}")
    int genLen;

    @Option(names = "--runs", defaultValue = "3", description = "timed runs (default: 3)")
    int runs;

    @Option(names = "--warmups", defaultValue = "2", description = "untimed runs (default: 2)")
    int warmups;

    @Option(names = "--threads", description = "compute threads (default: all cores)")
    Integer threads;

    @Option(names = "--device", defaultValue = "cpu", description = Devices.DESCRIPTION)
    String device;

    @Option(
        names = "--quantize",
        defaultValue = "none",
        converter = EngineOptions.QuantizationConverter.class,
        description =
            "linear-layer weights: none (as stored) or int8 (see the engine flags) (default:"
                + " ${DEFAULT-VALUE})")
    Quantization quantize;

    @Option(names = "--json", description = "print one JSON object")
    boolean json;

    @Option(
        names = "--tensor-parallel-size",
        defaultValue = "1",
        converter = EngineOptions.TensorParallelSizeConverter.class,
        description =
            "ranks the forward pass is split over, --threads / N compute threads each (see the"
                + " engine flags) (default: ${DEFAULT-VALUE})")
    int tensorParallelSize;

    @Override
    public Integer call() {
      int t = threads == null ? LoadedModel.defaultThreads() : threads;
      try (LoadedModel lm = LoadedModel.open(model, device, t, quantize, tensorParallelSize)) {
        ForwardBench.Result r = ForwardBench.run(lm.model(), promptLen, genLen, warmups, runs);
        if (json) {
          Map<String, Object> m = new LinkedHashMap<>();
          m.put("model", lm.dir().modelId());
          m.put("threads", t);
          m.put("tensor_parallel_size", tensorParallelSize);
          m.put("quantize", quantize.cliName());
          m.put("prompt_len", r.promptLen());
          m.put("gen_len", r.genLen());
          m.put("prefill_tokens_per_s", r.prefillTokensPerSecond());
          m.put("decode_tokens_per_s", r.decodeTokensPerSecond());
          m.put("decode_weight_bytes", r.weightBytes());
          m.put("decode_weight_gb_per_s", r.decodeWeightGigabytesPerSecond());
          System.out.println(Json.write(m));
        } else {
          System.out.printf(
              "model %s, %s backend, %d threads, tensor parallel %d, quantize %s%n"
                  + "prefill: %d tokens  %.1f tokens/s%n"
                  + "decode:  %d tokens  %.2f tokens/s  (%.1f MB of weights per token, %.1f GB/s)%n",
              lm.dir().modelId(),
              device,
              t,
              tensorParallelSize,
              quantize.cliName(),
              r.promptLen(),
              r.prefillTokensPerSecond(),
              r.genLen(),
              r.decodeTokensPerSecond(),
              r.weightBytes() / 1e6,
              r.decodeWeightGigabytesPerSecond());
        }
      }
      return 0;
    }
  }

  @Command(
      name = "quantize-accuracy",
      mixinStandardHelpOptions = true,
      description =
          "A quantized model against the same checkpoint as stored: greedy agreement and |Δ"
              + " logprob| over 16 code prompts, teacher-forced.")
  static final class QuantizeAccuracyCheck implements Callable<Integer> {
    @Option(names = "--model", required = true, description = "model directory")
    Path model;

    @Option(
        names = "--quantize",
        defaultValue = "int8",
        converter = EngineOptions.QuantizationConverter.class,
        description = "the quantization to check (default: ${DEFAULT-VALUE})")
    Quantization quantize;

    @Option(
        names = "--new-tokens",
        defaultValue = "32",
        description = "teacher-forced positions per prompt (default: ${DEFAULT-VALUE})")
    int newTokens;

    @Option(names = "--threads", description = "compute threads (default: all cores)")
    Integer threads;

    @Option(names = "--device", defaultValue = "cpu", description = Devices.DESCRIPTION)
    String device;

    @Option(names = "--json", description = "print one JSON object")
    boolean json;

    @Override
    public Integer call() {
      int t = threads == null ? LoadedModel.defaultThreads() : threads;
      try (LoadedModel lm = LoadedModel.open(model, device, t, Quantization.NONE);
          GptBigCodeModel q =
              new GptBigCodeModel(
                  lm.dir().config(),
                  lm.dir().weights(),
                  Devices.backend(device, t, quantize),
                  quantize)) {
        TeacherForcedComparison.Result r =
            QuantizeAccuracy.run(lm.model(), q, lm.tokenizer(), newTokens);
        if (json) {
          Map<String, Object> m = new LinkedHashMap<>();
          m.put("model", lm.dir().modelId());
          m.put("quantize", quantize.cliName());
          m.put("prompts", r.prompts());
          m.put("positions", r.positions());
          m.put("greedy_agreement", r.greedyAgreement());
          m.put("confident_positions", r.confidentPositions());
          m.put("confident_agreement", r.confidentAgreement());
          m.put("max_chosen_logprob_diff", r.maxChosenLogprobDiff());
          m.put("mean_chosen_logprob_diff", r.meanChosenLogprobDiff());
          m.put("max_logprob_diff", r.maxLogprobDiff());
          System.out.println(Json.write(m));
        } else {
          System.out.printf(
              "model %s, %s vs as stored, %d prompts × %d teacher-forced positions%n"
                  + "greedy agreement:  %d/%d = %.4f%n"
                  + "  where the stored model's top-two margin ≥ %.1f nats: %d/%d%n"
                  + "|Δ logprob| of the chosen token: max %.4g, mean %.4g%n"
                  + "|Δ logprob| over the vocabulary: max %.4g%n",
              lm.dir().modelId(),
              quantize.cliName(),
              r.prompts(),
              newTokens,
              r.greedyMatches(),
              r.positions(),
              r.greedyAgreement(),
              TeacherForcedComparison.CONFIDENT_MARGIN,
              r.confidentMatches(),
              r.confidentPositions(),
              r.maxChosenLogprobDiff(),
              r.meanChosenLogprobDiff(),
              r.maxLogprobDiff());
        }
      }
      return 0;
    }
  }

  @Command(
      name = "tokenizer",
      mixinStandardHelpOptions = true,
      description = "Encode/decode speed of the tokenizer (MB/s, ms per 8192-token prompt).")
  static final class TokenizerSpeed implements Callable<Integer> {
    @Option(
        names = "--corpus",
        defaultValue = "worker/src/test/resources/conformance.jsonl",
        description = "JSONL texts to encode (default: ${DEFAULT-VALUE})")
    Path corpus;

    @Option(
        names = "--tokenizer",
        defaultValue = "worker/src/main/resources/starcoder-tokenizer/tokenizer.json",
        description = "tokenizer.json (default: ${DEFAULT-VALUE})")
    Path tokenizer;

    @Override
    public Integer call() throws java.io.IOException {
      dev.starserve.bench.TokenizerBench.main(
          new String[] {corpus.toString(), tokenizer.toString()});
      return 0;
    }
  }

  @Command(
      name = "engine",
      mixinStandardHelpOptions = true,
      description =
          "The batching engine in-process: prefill and single-stream decode speed as fractions of"
              + " this machine's measured limits, then output tokens/s, TTFT and TPOT at each"
              + " concurrency, and the TTFT of a new request while the others decode.")
  static final class EngineSpeed implements Callable<Integer> {
    @Option(names = "--model", required = true, description = "model directory")
    Path model;

    @Option(
        names = "--concurrency",
        split = ",",
        defaultValue = "1,8,32",
        description = "concurrent requests per level (default: ${DEFAULT-VALUE})")
    int[] concurrency;

    @Option(names = "--prompt-len", defaultValue = "128", description = "default: ${DEFAULT-VALUE}")
    int promptLen;

    @Option(names = "--gen-len", defaultValue = "64", description = "default: ${DEFAULT-VALUE}")
    int genLen;

    @Option(
        names = "--prefill-len",
        defaultValue = "512",
        description = "prompt tokens of the prefill measurement (default: ${DEFAULT-VALUE})")
    int prefillLen;

    @Option(names = "--runs", defaultValue = "2", description = "timed runs per level (default: 2)")
    int runs;

    @Option(names = "--threads", description = "compute threads (default: all cores)")
    Integer threads;

    @Option(
        names = "--no-limits",
        description = "skip measuring the machine's limits (no fractions are reported)")
    boolean noLimits;

    @Option(names = "--json", description = "print one JSON object")
    boolean json;

    @picocli.CommandLine.Mixin EngineOptions engineOptions;

    @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

    /** A number for JSON: null where nothing was measured (NaN). */
    private static Double finite(double v) {
      return Double.isFinite(v) ? v : null;
    }

    private void check(boolean ok, String message) {
      if (!ok) {
        throw new picocli.CommandLine.ParameterException(spec.commandLine(), message);
      }
    }

    private static double measureTriad(int threads) throws Exception {
      return dev.starserve.bench.MachineLimits.bandwidth(threads, 256L << 20, 5);
    }

    private static double measureRead(int threads) throws Exception {
      return dev.starserve.bench.MachineLimits.readBandwidth(threads, 512L << 20, 5);
    }

    private static double measureFma(int threads) throws Exception {
      return dev.starserve.bench.MachineLimits.fmaPeak(threads, 200_000_000L, 5);
    }

    /** The higher of two readings, either of which may be NaN (not measured). */
    private static double higher(double a, double b) {
      return Double.isNaN(a) ? b : Double.isNaN(b) ? a : Math.max(a, b);
    }

    @Override
    public Integer call() throws Exception {
      check(concurrency.length > 0, "--concurrency needs at least one level");
      for (int c : concurrency) {
        check(c >= 1, "--concurrency levels must be >= 1, got " + c);
      }
      check(promptLen >= 1, "--prompt-len must be >= 1, got " + promptLen);
      check(genLen >= 2, "--gen-len must be >= 2, got " + genLen);
      check(prefillLen >= 1, "--prefill-len must be >= 1, got " + prefillLen);
      check(runs >= 1, "--runs must be >= 1, got " + runs);
      int t = threads == null ? LoadedModel.defaultThreads() : threads;
      check(t >= 1, "--threads must be >= 1, got " + t);
      // The limits are measured twice, before the model loads and again right after the
      // measurement each one is the yardstick of (the FMA peak after the prefill, the triad after
      // the c = 1 level). Each is already the best of five repetitions, and each fraction is of
      // the higher of its two readings, the most this machine showed in this run: on a shared VM
      // either limit can move by a quarter within minutes, and the first reading competes with
      // the JIT's compiler threads.
      double bandwidthBefore = Double.NaN;
      double readBefore = Double.NaN;
      double fmaBefore = Double.NaN;
      double bandwidthAfter = Double.NaN;
      double readAfter = Double.NaN;
      double fmaAfter = Double.NaN;
      if (!noLimits) {
        if (!json) {
          System.out.printf("measuring this machine's limits on %d threads...%n", t);
        }
        dev.starserve.bench.MachineLimits.fmaPeak(1, 20_000_000L, 2); // warm-up: JIT the loops
        dev.starserve.bench.MachineLimits.bandwidth(1, 16L << 20, 2);
        bandwidthBefore = measureTriad(t);
        readBefore = measureRead(t);
        fmaBefore = measureFma(t);
      }
      try (LoadedModel lm =
              LoadedModel.open(
                  model, "cpu", t, engineOptions.quantize, engineOptions.tensorParallelSize);
          dev.starserve.engine.Engine engine =
              new dev.starserve.engine.Engine(
                  lm.model(),
                  lm.tokenizer(),
                  lm.dir().eosTokenIds(),
                  engineOptions.toConfig(lm.model().config()))) {
        var cfg = lm.model().config();
        check(
            prefillLen + 1 <= cfg.nPositions() && promptLen + genLen <= cfg.nPositions(),
            "--prefill-len + 1 and --prompt-len + --gen-len must fit n_positions = "
                + cfg.nPositions());
        var cost = dev.starserve.bench.ModelCost.of(lm.model());
        int vocab = cfg.vocabSize();
        // warm-up: JIT the engine's paths at a small batch
        dev.starserve.bench.EngineBench.run(engine, vocab, 2, promptLen, Math.min(genLen, 8), 1);
        // Three prefills, not one, so that C2 has compiled the prefill path's loops before the
        // measured one (a Vector API loop that is not compiled yet runs boxed, many times slower).
        dev.starserve.bench.EngineBench.prefill(engine, vocab, prefillLen, 3);

        double prefill = dev.starserve.bench.EngineBench.prefill(engine, vocab, prefillLen, runs);
        double prefillFlops = prefill / prefillLen * cost.prefillFlops(prefillLen);
        if (!noLimits) {
          fmaAfter = measureFma(t);
        }
        java.util.List<Map<String, Object>> levels = new java.util.ArrayList<>();
        dev.starserve.bench.EngineBench.Level single = null;
        java.util.List<dev.starserve.bench.EngineBench.Level> measured =
            new java.util.ArrayList<>();
        for (int c : concurrency) {
          var l = dev.starserve.bench.EngineBench.run(engine, vocab, c, promptLen, genLen, runs);
          measured.add(l);
          if (c == 1 && single == null) {
            single = l;
            if (!noLimits) {
              bandwidthAfter = measureTriad(t);
              readAfter = measureRead(t);
            }
          }
        }
        double bandwidth = higher(bandwidthBefore, bandwidthAfter);
        double read = higher(readBefore, readAfter);
        double fmaPeak = higher(fmaBefore, fmaAfter);
        int maxC = java.util.Arrays.stream(concurrency).max().orElseThrow();
        double ttftUnderLoad =
            maxC > 1
                ? dev.starserve.bench.EngineBench.ttftUnderLoad(
                    engine, vocab, maxC - 1, promptLen, Math.max(genLen, 256))
                : Double.NaN;
        for (var l : measured) {
          Map<String, Object> m = new LinkedHashMap<>();
          m.put("n", l.n());
          m.put("output_tokens_per_s", l.outputTokensPerSecond());
          m.put("decode_tokens_per_s", l.decodeTokensPerSecond());
          m.put("ttft_ms", l.ttftMillis());
          m.put("tpot_ms", l.tpotMillis());
          m.put("peak_kv_blocks", l.peakKvBlocks());
          m.put("engine_bytes_per_decode_step", finite(l.engineBytesPerDecodeStep()));
          if (single != null) {
            m.put("output_vs_single", l.outputTokensPerSecond() / single.outputTokensPerSecond());
            m.put("decode_vs_single", l.decodeTokensPerSecond() / single.decodeTokensPerSecond());
          }
          levels.add(m);
        }
        double decode = single == null ? Double.NaN : single.decodeTokensPerSecond();
        double decodeBytes = decode * cost.decodeWeightBytes();
        if (json) {
          Map<String, Object> m = new LinkedHashMap<>();
          m.put("model", lm.dir().modelId());
          m.put("threads", t);
          m.put("prompt_len", promptLen);
          m.put("gen_len", genLen);
          m.put("quantize", engineOptions.quantize.cliName());
          m.put("tensor_parallel_size", engineOptions.tensorParallelSize);
          m.put("kv_cache_dtype", engine.config().kvCacheDtype().cliName());
          m.put("kv_cache_blocks", engine.config().numBlocks());
          m.put("bandwidth_gb_per_s", finite(bandwidth / 1e9));
          m.put("bandwidth_gb_per_s_before", finite(bandwidthBefore / 1e9));
          m.put("bandwidth_gb_per_s_after", finite(bandwidthAfter / 1e9));
          m.put("read_bandwidth_gb_per_s", finite(read / 1e9));
          m.put("read_bandwidth_gb_per_s_before", finite(readBefore / 1e9));
          m.put("read_bandwidth_gb_per_s_after", finite(readAfter / 1e9));
          m.put("fma_gflop_per_s", finite(fmaPeak / 1e9));
          m.put("fma_gflop_per_s_before", finite(fmaBefore / 1e9));
          m.put("fma_gflop_per_s_after", finite(fmaAfter / 1e9));
          m.put("prefill_len", prefillLen);
          m.put("prefill_tokens_per_s", prefill);
          m.put("prefill_gflop_per_s", finite(prefillFlops / 1e9));
          m.put("flops_fraction", finite(prefillFlops / fmaPeak));
          m.put("decode_tokens_per_s", finite(decode));
          m.put("decode_weight_bytes", cost.decodeWeightBytes());
          m.put("decode_weight_gb_per_s", finite(decodeBytes / 1e9));
          m.put("bandwidth_fraction", finite(decodeBytes / bandwidth));
          m.put("read_bandwidth_fraction", finite(decodeBytes / read));
          m.put("ttft_under_load_ms", finite(ttftUnderLoad));
          m.put("ttft_under_load_background", maxC - 1);
          m.put("concurrency", levels);
          System.out.println(Json.write(m));
          return 0;
        }
        System.out.printf(
            "model %s, %d threads, KV %s x %d blocks%n",
            lm.dir().modelId(),
            t,
            engine.config().kvCacheDtype().cliName(),
            engine.config().numBlocks());
        if (!noLimits) {
          System.out.printf(
              "machine (%d threads, this run): triad %.1f GB/s before the model loaded%s;"
                  + " read-only %.1f GB/s before%s; FP32 FMA %.1f GFLOP/s before, %.1f after the"
                  + " prefill; the fractions below are of the higher reading%n",
              t,
              bandwidthBefore / 1e9,
              Double.isNaN(bandwidthAfter)
                  ? " (no c = 1 level to read it after)"
                  : String.format(", %.1f after the c = 1 level", bandwidthAfter / 1e9),
              readBefore / 1e9,
              Double.isNaN(readAfter) ? "" : String.format(", %.1f after", readAfter / 1e9),
              fmaBefore / 1e9,
              fmaAfter / 1e9);
        }
        System.out.printf(
            "prefill %d tokens: %.1f tokens/s = %.1f GFLOP/s%s%n",
            prefillLen,
            prefill,
            prefillFlops / 1e9,
            noLimits
                ? ""
                : String.format(" (%.0f%% of the FMA peak)", 100 * prefillFlops / fmaPeak));
        if (single != null) {
          System.out.printf(
              "decode, 1 stream: %.2f tokens/s = %.1f GB/s of weights%s%n",
              decode,
              decodeBytes / 1e9,
              noLimits
                  ? ""
                  : String.format(
                      " (%.0f%% of the triad bandwidth, %.0f%% of the read-only bandwidth)",
                      100 * decodeBytes / bandwidth, 100 * decodeBytes / read));
        }
        for (var l : measured) {
          System.out.printf(
              "concurrency %3d: %8.1f output tokens/s  %8.1f decoding tokens/s  TTFT %8.1f ms"
                  + "  TPOT %7.1f ms  peak KV %d blocks  engine %.0f B/step%s%n",
              l.n(),
              l.outputTokensPerSecond(),
              l.decodeTokensPerSecond(),
              l.ttftMillis(),
              l.tpotMillis(),
              l.peakKvBlocks(),
              l.engineBytesPerDecodeStep(),
              single == null || l.n() == 1
                  ? ""
                  : String.format(
                      "  (x%.2f output, x%.2f decoding vs 1)",
                      l.outputTokensPerSecond() / single.outputTokensPerSecond(),
                      l.decodeTokensPerSecond() / single.decodeTokensPerSecond()));
        }
        if (maxC > 1) {
          System.out.printf(
              "TTFT of a new %d-token request while %d others decode: %.1f ms%n",
              promptLen, maxC - 1, ttftUnderLoad);
        }
      }
      return 0;
    }
  }

  @Command(
      name = "limits",
      mixinStandardHelpOptions = true,
      description =
          "This machine's memory bandwidth (STREAM-like triad, and read-only) and FP32 FMA peak, on"
              + " one thread and on all cores, measured from Java.")
  static final class Limits implements Callable<Integer> {
    @Option(
        names = "--threads",
        description = "threads for the all-cores figures (default: all cores)")
    Integer threads;

    @Option(
        names = "--array-mib",
        defaultValue = "256",
        description =
            "MiB per triad array, 3 per thread; the read-only figure reads twice this per thread"
                + " (default: ${DEFAULT-VALUE})")
    int arrayMib;

    @Option(names = "--json", description = "print one JSON object")
    boolean json;

    @Override
    public Integer call() throws Exception {
      int all = threads == null ? Runtime.getRuntime().availableProcessors() : threads;
      long bytes = (long) arrayMib << 20;
      dev.starserve.bench.MachineLimits.fmaPeak(1, 20_000_000L, 2); // warm-up: JIT the loops
      dev.starserve.bench.MachineLimits.bandwidth(1, 16L << 20, 2);
      double bw1 = dev.starserve.bench.MachineLimits.bandwidth(1, bytes, 5);
      double bwAll = dev.starserve.bench.MachineLimits.bandwidth(all, bytes, 5);
      double rd1 = dev.starserve.bench.MachineLimits.readBandwidth(1, 2 * bytes, 5);
      double rdAll = dev.starserve.bench.MachineLimits.readBandwidth(all, 2 * bytes, 5);
      double fma1 = dev.starserve.bench.MachineLimits.fmaPeak(1, 200_000_000L, 5);
      double fmaAll = dev.starserve.bench.MachineLimits.fmaPeak(all, 200_000_000L, 5);
      if (json) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("threads", all);
        m.put("bandwidth_gb_per_s_1", bw1 / 1e9);
        m.put("bandwidth_gb_per_s_all", bwAll / 1e9);
        m.put("read_bandwidth_gb_per_s_1", rd1 / 1e9);
        m.put("read_bandwidth_gb_per_s_all", rdAll / 1e9);
        m.put("fma_gflop_per_s_1", fma1 / 1e9);
        m.put("fma_gflop_per_s_all", fmaAll / 1e9);
        System.out.println(Json.write(m));
      } else {
        System.out.printf(
            "memory bandwidth (triad): %.1f GB/s on 1 thread, %.1f GB/s on %d%n",
            bw1 / 1e9, bwAll / 1e9, all);
        System.out.printf(
            "memory bandwidth (read): %.1f GB/s on 1 thread, %.1f GB/s on %d%n",
            rd1 / 1e9, rdAll / 1e9, all);
        System.out.printf(
            "FP32 FMA peak:            %.1f GFLOP/s on 1 thread, %.1f GFLOP/s on %d%n",
            fma1 / 1e9, fmaAll / 1e9, all);
      }
      return 0;
    }
  }

  @Command(
      name = "jmh",
      description = {
        "JMH microbenchmarks of the CPU kernels (dev.starserve.bench.jmh): linear layers, MQA"
            + " attention, LayerNorm, GELU, sampling.",
        "Every argument goes to JMH: -h lists its options, -l the benchmarks, -lp their"
            + " parameters; e.g. bench jmh LinearBench -p layer=lm_head -p tokens=1."
      })
  static final class Jmh implements Callable<Integer> {
    // NOTE: no picocli options of its own (not even -h), so that every argument reaches JMH as is.
    @Unmatched List<String> jmhArgs = new ArrayList<>();

    @Override
    public Integer call() throws java.io.IOException {
      // JMH's own command line: it prints help and lists, runs the forks and exits non-zero itself
      // on a bad option or a failed run.
      org.openjdk.jmh.Main.main(jmhArgs.toArray(String[]::new));
      return 0;
    }
  }

  @Command(
      name = "serve",
      mixinStandardHelpOptions = true,
      description =
          "A load generator against a running gateway, through one of its public APIs (always"
              + " streaming): requests/s, output tokens/s, TTFT, TPOT and end-to-end latency"
              + " (mean, p50, p90, p99), errors by kind. Progress goes to stderr every second.")
  static final class Serve implements Callable<Integer> {
    @Option(
        names = "--target",
        required = true,
        paramLabel = "URL",
        description =
            "the gateway: http://host:port for openai and tgi, host:port for fmaas (gRPC)")
    String target;

    @Option(
        names = "--api",
        required = true,
        paramLabel = "API",
        description =
            "fmaas (GenerateStream over gRPC), openai (/v1/completions) or tgi"
                + " (/generate_stream)")
    String api;

    @Option(
        names = "--concurrency",
        defaultValue = "1",
        description = "requests in flight at most (default: ${DEFAULT-VALUE})")
    int concurrency;

    @Option(names = "--requests", required = true, description = "requests to send in all")
    int requests;

    @Option(
        names = "--rate",
        paramLabel = "R",
        description =
            "open loop: Poisson arrivals at R requests/s, still at most --concurrency in flight"
                + " (default: closed loop)")
    Double rate;

    @Option(
        names = "--prompt-len",
        defaultValue = "128",
        description =
            "words per synthetic prompt, one StarCoder token each (default: ${DEFAULT-VALUE})")
    int promptLen;

    @Option(
        names = "--gen-len",
        defaultValue = "64",
        description = "new tokens asked of every request (default: ${DEFAULT-VALUE})")
    int genLen;

    @Option(
        names = "--model",
        description = "model id (default: openai the first of /v1/models, fmaas the server's)")
    String model;

    @Option(names = "--api-key", description = "sent as authorization: Bearer KEY")
    String apiKey;

    @Option(
        names = "--duration-limit",
        paramLabel = "SECONDS",
        description = "stop after this long, cancelling what is in flight (default: none)")
    Double durationLimit;

    @Option(
        names = "--request-timeout",
        paramLabel = "SECONDS",
        defaultValue = "600",
        description = "cancel a request still open after this long (default: ${DEFAULT-VALUE})")
    double requestTimeout;

    @Option(
        names = "--seed",
        defaultValue = "0",
        description = "seed of the prompts and arrivals (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--json", description = "print one JSON object")
    boolean json;

    /** The validated run, or IllegalArgumentException naming the flag. */
    ServeBenchConfig config() {
      Api a = Api.parse(api);
      if (rate != null && !(rate > 0)) {
        throw new IllegalArgumentException(
            "--rate must be a positive number of requests per second, got " + rate);
      }
      return new ServeBenchConfig(
          a,
          Target.parse(target, a),
          concurrency,
          requests,
          rate == null ? 0 : rate,
          promptLen,
          genLen,
          model,
          apiKey,
          durationLimit == null
              ? null
              : ServeBenchConfig.seconds("--duration-limit", durationLimit),
          ServeBenchConfig.seconds("--request-timeout", requestTimeout),
          seed);
    }

    @Override
    public Integer call() throws IOException, InterruptedException {
      ServeBenchConfig c = config();
      PrintStream err = new PrintStream(System.err, true, StandardCharsets.UTF_8);
      ServeBenchReport r = ServeBench.run(c, err);
      if (json) {
        System.out.println(Json.write(r.toMap()));
      } else {
        System.out.print(r.toText());
      }
      System.out.flush();
      return r.completed() == 0 ? 1 : 0; // nothing completed: the target is down or refuses
    }
  }
}
