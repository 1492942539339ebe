package dev.starserve.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The commands as a user runs them: output formats, exit codes and error messages. */
class CommandLineTest {
  @TempDir static Path tmp;
  static Path model;

  record Run(int code, String out, String err) {}

  static synchronized Run run(String... args) {
    PrintStream oldOut = System.out;
    PrintStream oldErr = System.err;
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    try {
      System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
      System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
      int code = Main.run(args);
      return new Run(
          code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    } finally {
      System.setOut(oldOut);
      System.setErr(oldErr);
    }
  }

  @BeforeAll
  static void makeModel() {
    model = tmp.resolve("tiny");
    Run r =
        run(
            "make-model",
            "--shape",
            "tiny",
            "--dtype",
            "float32",
            "--seed",
            "5",
            "--std",
            "0.1",
            "--out",
            model.toString());
    assertEquals(0, r.code(), r.err());
    assertTrue(Files.isRegularFile(model.resolve("config.json")));
  }

  @Test
  void benchEngineJsonHasTheDocumentedFieldsAndEveryLevel() throws Exception {
    Run r =
        run(
            "bench",
            "engine",
            "--model",
            model.toString(),
            "--concurrency",
            "1,3",
            "--prompt-len",
            "8",
            "--gen-len",
            "4",
            "--prefill-len",
            "16",
            "--runs",
            "1",
            "--no-limits",
            "--kv-cache-blocks",
            "64",
            "--json");
    assertEquals(0, r.code(), r.err());
    JsonNode j = Json.MAPPER.readTree(r.out());
    assertTrue(j.get("prefill_tokens_per_s").asDouble() > 0);
    assertTrue(j.get("decode_tokens_per_s").asDouble() > 0);
    assertTrue(j.get("decode_weight_bytes").asLong() > 0);
    assertTrue(j.get("bandwidth_fraction").isNull(), "no limits measured, no fraction");
    assertTrue(j.get("flops_fraction").isNull());
    for (String f :
        List.of(
            "bandwidth_gb_per_s_before",
            "bandwidth_gb_per_s_after",
            "fma_gflop_per_s_before",
            "fma_gflop_per_s_after")) {
      assertTrue(j.has(f) && j.get(f).isNull(), f + " in " + j);
    }
    assertEquals(2, j.get("ttft_under_load_background").asInt());
    assertTrue(j.get("ttft_under_load_ms").asDouble() > 0);
    JsonNode levels = j.get("concurrency");
    assertEquals(2, levels.size());
    assertEquals(1, levels.get(0).get("n").asInt());
    assertEquals(3, levels.get(1).get("n").asInt());
    for (JsonNode l : levels) {
      assertTrue(l.get("output_tokens_per_s").asDouble() > 0);
      assertTrue(l.get("ttft_ms").asDouble() > 0);
      assertTrue(l.get("tpot_ms").asDouble() > 0);
      // 8 + 4 tokens fit one 16-position block per request. The level submits its requests one
      // after another, so on a busy machine the first may finish before the last arrives: the
      // peak is at least one block and at most one per request.
      int peak = l.get("peak_kv_blocks").asInt();
      assertTrue(peak >= 1 && peak <= l.get("n").asInt(), l.toString());
    }
  }

  @Test
  void benchEngineRejectsBadLevelsNamingTheFlag() {
    Run r = run("bench", "engine", "--model", model.toString(), "--concurrency", "1,0");
    assertEquals(2, r.code());
    assertTrue(r.err().contains("--concurrency levels must be >= 1, got 0"), r.err());
    r = run("bench", "engine", "--model", model.toString(), "--gen-len", "1");
    assertEquals(2, r.code());
    assertTrue(r.err().contains("--gen-len must be >= 2"), r.err());
  }

  @Test
  void generateJsonHasTheDocumentedFieldsAndConsistentLogprobs() throws Exception {
    Run r =
        run(
            "generate",
            "--model",
            model.toString(),
            "--prompt",
            "def print_hello",
            "--max-new-tokens",
            "5",
            "--logprobs",
            "3",
            "--json",
            "--threads",
            "2");
    assertEquals(0, r.code(), r.err());
    JsonNode j = Json.MAPPER.readTree(r.out());
    assertEquals(4, j.get("prompt_tokens").asInt()); // def Ġprint _ hello
    JsonNode tokens = j.get("tokens");
    assertTrue(tokens.size() >= 1 && tokens.size() <= 5);
    StringBuilder text = new StringBuilder();
    for (JsonNode t : tokens) {
      JsonNode top = t.get("top_logprobs");
      assertEquals(3, top.size());
      // Greedy: the chosen token is the best alternative, with the same logprob.
      assertEquals(t.get("id").asInt(), top.get(0).get("id").asInt());
      assertEquals(t.get("logprob").asDouble(), top.get(0).get("logprob").asDouble(), 1e-12);
      assertTrue(top.get(0).get("logprob").asDouble() >= top.get(1).get("logprob").asDouble());
      assertTrue(t.get("logprob").asDouble() < 0);
      text.append(t.get("text").asText());
    }
    assertEquals(text.toString(), j.get("text").asText());
    String reason = j.get("finish_reason").asText();
    assertTrue(reason.equals("length") || reason.equals("eos_token"), reason);
    if (reason.equals("length")) {
      assertEquals(5, tokens.size());
    }
  }

  @Test
  void cpuAndReferenceBackendsGenerateTheSameTokensFromPromptIds() throws Exception {
    Run a =
        run(
            "generate",
            "--model",
            model.toString(),
            "--prompt-ids",
            "1,2,3",
            "--max-new-tokens",
            "4",
            "--json");
    Run b =
        run(
            "generate",
            "--model",
            model.toString(),
            "--prompt-ids",
            "1,2,3",
            "--max-new-tokens",
            "4",
            "--json",
            "--device",
            "reference");
    assertEquals(0, a.code(), a.err());
    assertEquals(0, b.code(), b.err());
    JsonNode ja = Json.MAPPER.readTree(a.out());
    JsonNode jb = Json.MAPPER.readTree(b.out());
    assertEquals(3, ja.get("prompt_tokens").asInt());
    assertEquals(ja.get("text"), jb.get("text"));
    assertEquals(ja.get("tokens").size(), jb.get("tokens").size());
    for (int i = 0; i < ja.get("tokens").size(); i++) {
      JsonNode ta = ja.get("tokens").get(i);
      JsonNode tb = jb.get("tokens").get(i);
      assertEquals(ta.get("id"), tb.get("id"));
      assertEquals(ta.get("logprob").asDouble(), tb.get("logprob").asDouble(), 1e-4);
    }
  }

  @Test
  void tokenizeJsonlPrintsOneResultPerLineAndAnErrorForABadLine() throws Exception {
    Path in = tmp.resolve("in.jsonl");
    Files.writeString(in, "{\"text\":\"def print_hello\"}\nnot json\n{\"text\":\"\"}\n");
    Run r = run("tokenize", "--model", model.toString(), "--jsonl", in.toString());
    assertEquals(1, r.code());
    String[] lines = r.out().split("\n");
    assertEquals(3, lines.length);
    JsonNode first = Json.MAPPER.readTree(lines[0]);
    assertEquals("[589,1459,81,7656]", first.get("ids").toString());
    assertEquals("[\"def\",\"Ġprint\",\"_\",\"hello\"]", first.get("tokens").toString());
    assertTrue(Json.MAPPER.readTree(lines[1]).get("error").asText().contains("line 2"));
    assertEquals("[]", Json.MAPPER.readTree(lines[2]).get("ids").toString());
  }

  @Test
  void benchJmhHandsEveryArgumentToJmhUnchanged() {
    // A regular expression and JMH's own short options (-lp, -h) that picocli must not take.
    Run list = run("bench", "jmh", "LinearBench", "-lp");
    assertEquals(0, list.code(), list.err());
    assertTrue(list.out().contains("dev.starserve.bench.jmh.LinearBench.linear"), list.out());
    assertTrue(list.out().contains("param \"tokens\" = {1, 8, 32, 128, 512}"), list.out());
    assertTrue(!list.out().contains("AttentionBench"), "the regexp selects: " + list.out());
    Run help = run("bench", "jmh", "-h");
    assertEquals(0, help.code(), help.err());
    assertTrue(help.out().contains("-jvmArgsAppend"), help.out());
  }

  @Test
  void userErrorsAreOneLineMessagesNotStackTraces() {
    Run missing = run("generate", "--model", tmp.resolve("nope").toString(), "--prompt", "x");
    assertEquals(2, missing.code());
    assertTrue(missing.err().startsWith("error: "), missing.err());
    assertTrue(missing.err().contains("nope"), missing.err());
    assertTrue(!missing.err().contains("\tat "), missing.err());

    Run badShape = run("make-model", "--shape", "huge", "--out", tmp.resolve("x").toString());
    assertEquals(2, badShape.code());
    assertTrue(badShape.err().contains("huge"), badShape.err());

    Run badId = run("generate", "--model", model.toString(), "--prompt-ids", "1,999999", "--json");
    assertEquals(2, badId.code());
    assertTrue(badId.err().contains("999999"), badId.err());
  }

  @Test
  void requestsRunWithABf16KvCacheAndOtherKvDtypesAreRejectedBeforeLoading() throws Exception {
    Path in = tmp.resolve("bf16-requests.jsonl");
    Files.writeString(in, "{\"prompt_ids\": [1, 2, 3], \"max_new_tokens\": 4}\n");
    Run ok =
        run(
            "generate",
            "--model",
            model.toString(),
            "--requests",
            in.toString(),
            "--kv-cache-memory",
            "1m",
            "--kv-cache-dtype",
            "bf16");
    assertEquals(0, ok.code(), ok.err());
    JsonNode first = Json.MAPPER.readTree(ok.out().split("\n")[0]);
    assertEquals(4, first.get("tokens").size(), ok.out());
    assertEquals("length", first.get("finish_reason").asText());

    for (String bad : new String[] {"fp16", "garbage"}) {
      Run r =
          run(
              "generate",
              "--model",
              tmp.resolve("not-loaded").toString(),
              "--requests",
              in.toString(),
              "--kv-cache-dtype",
              bad);
      assertEquals(2, r.code(), r.err());
      assertTrue(
          r.err()
              .contains(
                  "Invalid value for option '--kv-cache-dtype': must be one of fp32, bf16, got '"
                      + bad
                      + "'"),
          r.err());
      assertTrue(!r.err().contains("not-loaded"), "rejected before the model is opened");
    }
  }

  @Test
  void quantizeInt8RunsGenerateAndBothBenchesAndBadValuesAreRejectedBeforeLoading()
      throws Exception {
    String[] gen = {
      "generate",
      "--model",
      model.toString(),
      "--prompt-ids",
      "1,2,3",
      "--max-new-tokens",
      "4",
      "--json"
    };
    Run none = run(gen);
    Run int8 = run(concat(gen, "--quantize", "int8"));
    assertEquals(0, none.code(), none.err());
    assertEquals(0, int8.code(), int8.err());
    JsonNode a = Json.MAPPER.readTree(none.out()).get("tokens");
    JsonNode b = Json.MAPPER.readTree(int8.out()).get("tokens");
    // int8 moves the logprobs a little (this model: std 0.1, f32), not a lot.
    double first =
        Math.abs(a.get(0).get("logprob").asDouble() - b.get(0).get("logprob").asDouble());
    assertTrue(first > 1e-6 && first < 0.1, "first token logprob moved by " + first);

    String[] fwd = {
      "bench",
      "forward",
      "--model",
      model.toString(),
      "--prompt-len",
      "8",
      "--gen-len",
      "2",
      "--warmups",
      "0",
      "--runs",
      "1",
      "--json"
    };
    JsonNode fNone = Json.MAPPER.readTree(run(fwd).out());
    JsonNode fInt8 = Json.MAPPER.readTree(run(concat(fwd, "--quantize", "int8")).out());
    assertEquals("none", fNone.get("quantize").asText());
    assertEquals("int8", fInt8.get("quantize").asText());
    // f32 → int8: about 4.5× fewer bytes for the linear weights, LayerNorms and biases unchanged
    double ratio =
        fNone.get("decode_weight_bytes").asDouble() / fInt8.get("decode_weight_bytes").asDouble();
    assertTrue(ratio > 3.4 && ratio < 3.6, "f32 / int8 bytes per decode step " + ratio);

    Run acc =
        run(
            "bench",
            "quantize-accuracy",
            "--model",
            model.toString(),
            "--new-tokens",
            "4",
            "--json");
    assertEquals(0, acc.code(), acc.err());
    JsonNode j = Json.MAPPER.readTree(acc.out());
    assertEquals(16, j.get("prompts").asInt());
    assertEquals(64, j.get("positions").asInt());
    assertTrue(j.get("greedy_agreement").asDouble() >= 0.8, acc.out());

    String missing = tmp.resolve("not-loaded").toString();
    String[][] commands = {
      {"generate", "--model", missing, "--prompt", "x"},
      {"bench", "forward", "--model", missing},
      {"bench", "engine", "--model", missing},
      {"bench", "quantize-accuracy", "--model", missing},
      {"worker", "--model", missing},
      {"serve", "--model", missing},
    };
    for (String[] c : commands) {
      Run r = run(concat(c, "--quantize", "int4"));
      assertEquals(2, r.code(), String.join(" ", c) + ": " + r.err());
      assertTrue(
          r.err()
              .contains(
                  "Invalid value for option '--quantize': must be one of none, int8, got 'int4'"),
          String.join(" ", c) + ": " + r.err());
      assertTrue(!r.err().contains("not-loaded"), "rejected before the model is opened");
    }
  }

  @Test
  void requestsFileRunsEveryLineInOneEngineAndAnswersBadLinesInPlace() throws Exception {
    Path in = tmp.resolve("requests.jsonl");
    Files.writeString(
        in,
        String.join(
            "\n",
            "{\"prompt_ids\": [1, 2, 3], \"max_new_tokens\": 4}",
            "{\"prompt\": \"x\", \"top_p\": 1.5}",
            "{\"prefix\": \"def f(a):\\n    \", \"suffix\": \"\\n    return b\", \"max_new_tokens\": 2}",
            "{\"prompt\": \"x\", \"bogus\": 1}",
            "{\"prompt_ids\": [1, 2, 3], \"max_new_tokens\": 3, \"temperature\": 0.7, \"seed\": 5,"
                + " \"n\": 2, \"logprobs\": 1, \"prompt_logprobs\": true}",
            ""));
    Run r =
        run(
            "generate",
            "--model",
            model.toString(),
            "--requests",
            in.toString(),
            "--kv-cache-blocks",
            "64");
    assertEquals(1, r.code(), r.err());
    String[] lines = r.out().split("\n");
    assertEquals(5, lines.length, r.out());
    JsonNode first = Json.MAPPER.readTree(lines[0]);
    assertEquals(4, first.get("tokens").size());
    assertEquals("length", first.get("finish_reason").asText());
    // the same request through the single-prompt greedy path gives the same tokens
    Run single =
        run(
            "generate",
            "--model",
            model.toString(),
            "--prompt-ids",
            "1,2,3",
            "--max-new-tokens",
            "4",
            "--json");
    JsonNode ref = Json.MAPPER.readTree(single.out());
    for (int i = 0; i < 4; i++) {
      assertEquals(ref.get("tokens").get(i).get("id"), first.get("tokens").get(i).get("id"));
    }
    assertEquals(
        "line 2: top_p must be in (0, 1], got 1.5",
        Json.MAPPER.readTree(lines[1]).get("error").asText());
    JsonNode fim = Json.MAPPER.readTree(lines[2]);
    assertTrue(fim.get("prompt_tokens").asInt() > 5, lines[2]);
    assertTrue(
        Json.MAPPER.readTree(lines[3]).get("error").asText().contains("unknown field 'bogus'"));
    JsonNode n2 = Json.MAPPER.readTree(lines[4]);
    assertEquals(2, n2.get("samples").size());
    assertEquals(2, n2.get("prompt_logprobs").size()); // tokens 2 and 3 given their prefixes
    assertEquals(1, n2.get("tokens").get(0).get("top_logprobs").size());
  }

  static String ids(int from, int count) {
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < count; i++) {
      sb.append(i == 0 ? "" : ", ").append(from + i);
    }
    return sb.toString();
  }

  @Test
  void badRequestLinesGetAnErrorNamingTheFieldAndTheOthersStillRun() throws Exception {
    Path in = tmp.resolve("bad-lines.jsonl");
    Files.writeString(
        in,
        String.join(
            "\n",
            "{\"prompt\": \"\"}",
            "{\"prompt_ids\": []}",
            "{\"prompt_ids\": [" + ids(100, 512) + "]}",
            "{\"prompt_ids\": [1, 2, 3], \"n\": 17}",
            "{\"prompt_ids\": [1, 2, 3], \"time_limit_ms\": -5}",
            "{\"prompt\": \"x\", \"messages\": []}",
            "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"max_new_tokens\": 2}",
            "{\"prompt_ids\": ["
                + ids(100, 512)
                + "], \"truncate_prompt_tokens\": 500,"
                + " \"max_new_tokens\": 1}",
            ""));
    Run r = run("generate", "--model", model.toString(), "--requests", in.toString());
    assertEquals(1, r.code(), r.err());
    String[] lines = r.out().split("\n");
    assertEquals(8, lines.length, r.out());
    assertEquals(
        "line 1: prompt must be a non-empty string",
        Json.MAPPER.readTree(lines[0]).get("error").asText());
    assertEquals(
        "line 2: prompt_ids must hold at least one id",
        Json.MAPPER.readTree(lines[1]).get("error").asText());
    assertEquals(
        "line 3: the prompt has 512 tokens but the model's context is 512 (n_positions); it must"
            + " be shorter to leave room for a new token, or set truncate_prompt_tokens to keep only"
            + " its end",
        Json.MAPPER.readTree(lines[2]).get("error").asText());
    assertEquals(
        "line 4: n must be in [1, 16], got 17",
        Json.MAPPER.readTree(lines[3]).get("error").asText());
    assertEquals(
        "line 5: time_limit_ms must be in [0, 604800000] (0 = no limit), got -5",
        Json.MAPPER.readTree(lines[4]).get("error").asText());
    assertEquals(
        "line 6: give exactly one of prompt, prompt_ids, prefix+suffix, messages; got prompt,"
            + " messages",
        Json.MAPPER.readTree(lines[5]).get("error").asText());
    JsonNode chat = Json.MAPPER.readTree(lines[6]);
    assertTrue(chat.get("prompt_tokens").asInt() > 20, lines[6]); // the Tech Assistant preamble
    assertTrue(chat.get("tokens").size() >= 1 && chat.get("tokens").size() <= 2, lines[6]);
    assertEquals(500, Json.MAPPER.readTree(lines[7]).get("prompt_tokens").asInt());
  }

  @Test
  void engineFlagsChangeHowTheEngineRunsButNotWhatASeededRequestGives() throws Exception {
    Path in = tmp.resolve("flags.jsonl");
    Files.writeString(
        in,
        String.join(
            "\n",
            "{\"prompt_ids\": ["
                + ids(200, 40)
                + "], \"n\": 2, \"max_new_tokens\": 3,"
                + " \"temperature\": 0.8, \"seed\": 3}",
            "{\"prompt_ids\": [" + ids(300, 100) + "], \"max_new_tokens\": 4}",
            ""));
    String[] base = {"generate", "--model", model.toString(), "--requests", in.toString()};
    Run dflt = run(base);
    assertEquals(0, dflt.code(), dflt.err());
    JsonNode d = Json.MAPPER.readTree(dflt.out().split("\n")[0]);
    // prefix caching is on by default: sample 2 reuses the 2 full blocks sample 1 computed
    assertEquals(32, d.get("samples").get(1).get("cached_prompt_tokens").asInt());

    Run noCache = run(concat(base, "--no-enable-prefix-caching"));
    assertEquals(0, noCache.code(), noCache.err());
    assertTrue(!noCache.out().contains("cached_prompt_tokens"), noCache.out());

    Run small =
        run(
            concat(
                base,
                "--block-size",
                "8",
                "--kv-cache-blocks",
                "30",
                "--max-num-seqs",
                "1",
                "--max-num-batched-tokens",
                "8"));
    assertEquals(0, small.code(), small.err());
    Run memory = run(concat(base, "--kv-cache-memory", "64m"));
    assertEquals(0, memory.code(), memory.err());
    for (Run other : new Run[] {noCache, small, memory}) {
      String[] a = dflt.out().split("\n");
      String[] b = other.out().split("\n");
      for (int i = 0; i < 2; i++) {
        JsonNode x = Json.MAPPER.readTree(a[i]);
        JsonNode y = Json.MAPPER.readTree(b[i]);
        assertSameSample(x, y);
        for (int k = 0; x.has("samples") && k < x.get("samples").size(); k++) {
          assertSameSample(x.get("samples").get(k), y.get("samples").get(k));
        }
      }
    }

    Run tooSmall = run(concat(base, "--kv-cache-memory", "1k"));
    assertEquals(2, tooSmall.code());
    assertTrue(tooSmall.err().contains("does not hold one block"), tooSmall.err());
    Run badSeqs = run(concat(base, "--max-num-seqs", "0"));
    assertEquals(2, badSeqs.code());
    assertTrue(badSeqs.err().contains("max_num_seqs must be in [1, 4096], got 0"), badSeqs.err());
  }

  /** Same tokens, text and finish reason; logprobs within 1e-4 (batches change rounding). */
  static void assertSameSample(JsonNode x, JsonNode y) {
    assertEquals(x.get("text"), y.get("text"));
    assertEquals(x.get("finish_reason"), y.get("finish_reason"));
    assertEquals(x.get("tokens").size(), y.get("tokens").size());
    for (int t = 0; t < x.get("tokens").size(); t++) {
      JsonNode u = x.get("tokens").get(t);
      JsonNode v = y.get("tokens").get(t);
      assertEquals(u.get("id"), v.get("id"));
      assertEquals(u.get("logprob").asDouble(), v.get("logprob").asDouble(), 1e-4);
    }
  }

  static String[] concat(String[] a, String... b) {
    String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }
}
