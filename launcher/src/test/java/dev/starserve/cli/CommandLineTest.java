package dev.starserve.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
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
}
