package dev.starserve.cli;

import dev.starserve.generate.GeneratedToken;
import dev.starserve.generate.GenerationResult;
import dev.starserve.generate.GreedyGenerator;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** Greedy generation from one prompt. */
@Command(
    name = "generate",
    mixinStandardHelpOptions = true,
    description =
        "Generate greedily from a prompt; streams text, or prints one JSON line with --json.")
final class GenerateCommand implements Callable<Integer> {
  @Option(names = "--model", required = true, description = "model directory")
  Path model;

  @ArgGroup(exclusive = true, multiplicity = "1")
  Prompt prompt;

  static final class Prompt {
    @Option(names = "--prompt", description = "prompt text")
    String text;

    @Option(names = "--prompt-ids", split = ",", description = "prompt token ids, e.g. 1,2,3")
    int[] ids;

    @Option(
        names = "--requests",
        description = "a JSONL file of requests, all submitted at once to one engine")
    Path requests;
  }

  @picocli.CommandLine.Mixin EngineOptions engineOptions;

  @Option(
      names = "--max-new-tokens",
      defaultValue = "32",
      description = "most tokens to generate (default: ${DEFAULT-VALUE})")
  int maxNewTokens;

  @Option(
      names = "--logprobs",
      defaultValue = "0",
      description = "top alternatives per token in --json output, 0-20 (default: 0)")
  int logprobs;

  @Option(names = "--json", description = "print one JSON line instead of streaming text")
  boolean json;

  @Option(names = "--device", defaultValue = "cpu", description = Devices.DESCRIPTION)
  String device;

  @Option(names = "--threads", description = "compute threads (default: all cores)")
  Integer threads;

  @Override
  public Integer call() throws java.io.IOException {
    if (maxNewTokens < 0) {
      throw new IllegalArgumentException("--max-new-tokens must be >= 0, got " + maxNewTokens);
    }
    if (logprobs < 0 || logprobs > 20) {
      throw new IllegalArgumentException("--logprobs must be in [0, 20], got " + logprobs);
    }
    PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
    try (LoadedModel lm =
        LoadedModel.open(
            model,
            device,
            threads == null ? LoadedModel.defaultThreads() : threads,
            engineOptions.quantize,
            engineOptions.tensorParallelSize)) {
      if (prompt.requests != null) {
        return RequestFileRunner.run(
            lm, engineOptions.toConfig(lm.model().config()), prompt.requests, out);
      }
      int[] ids = prompt.ids != null ? prompt.ids : lm.tokenizer().encode(prompt.text);
      GreedyGenerator gen = new GreedyGenerator(lm.model(), lm.tokenizer(), lm.dir().eosTokenIds());
      long t0 = System.nanoTime();
      GenerationResult r =
          gen.generate(
              ids,
              maxNewTokens,
              logprobs,
              t -> {
                if (!json) {
                  out.print(t.text());
                  out.flush();
                }
              });
      double secs = (System.nanoTime() - t0) / 1e9;
      if (json) {
        out.println(Json.write(toJson(r)));
      } else {
        out.println();
        System.err.printf(
            "[%d prompt tokens, %d generated, %s, %.2f s]%n",
            r.promptTokens(), r.tokens().size(), r.finishReason().wireName(), secs);
      }
    }
    return 0;
  }

  static Map<String, Object> toJson(GenerationResult r) {
    List<Map<String, Object>> tokens = new ArrayList<>();
    for (GeneratedToken t : r.tokens()) {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("id", t.id());
      m.put("text", t.text());
      m.put("logprob", t.logprob());
      List<Map<String, Object>> top = new ArrayList<>();
      for (GeneratedToken.TopLogprob a : t.topLogprobs()) {
        Map<String, Object> e = new LinkedHashMap<>();
        e.put("id", a.id());
        e.put("logprob", a.logprob());
        top.add(e);
      }
      m.put("top_logprobs", top);
      tokens.add(m);
    }
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("prompt_tokens", r.promptTokens());
    m.put("tokens", tokens);
    m.put("text", r.text());
    m.put("finish_reason", r.finishReason().wireName());
    return m;
  }
}
