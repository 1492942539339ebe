package dev.starserve.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.starserve.cli.CommandLineTest.Run;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --tensor-parallel-size} as a user gives it: generate (the sequential path and the engine
 * path of --requests) gives the same tokens on 2 and 4 ranks as on one, and sizes the model cannot
 * be split into are rejected with a message naming the flag.
 */
class TensorParallelCommandLineTest {
  @TempDir static Path tmp;
  static Path model;

  @BeforeAll
  static void makeModel() {
    model = tmp.resolve("tiny"); // 4 heads, n_inner 256
    Run r =
        CommandLineTest.run(
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
  }

  private static JsonNode generate(String tp) throws Exception {
    Run r =
        CommandLineTest.run(
            "generate",
            "--model",
            model.toString(),
            "--prompt",
            "def fibonacci(n):",
            "--max-new-tokens",
            "12",
            "--json",
            "--threads",
            "2",
            "--tensor-parallel-size",
            tp);
    assertEquals(0, r.code(), r.err());
    return Json.MAPPER.readTree(r.out());
  }

  @Test
  void generateOnTwoAndFourRanksGivesTheTokensOfOne() throws Exception {
    JsonNode one = generate("1");
    assertEquals(12, one.get("tokens").size(), one.toString());
    for (String tp : new String[] {"2", "4"}) {
      JsonNode many = generate(tp);
      assertEquals(one.get("text").asText(), many.get("text").asText(), "tp " + tp);
      for (int i = 0; i < 12; i++) {
        JsonNode a = one.get("tokens").get(i);
        JsonNode b = many.get("tokens").get(i);
        assertEquals(a.get("id").asInt(), b.get("id").asInt(), "tp " + tp + " token " + i);
        assertEquals(
            a.get("logprob").asDouble(),
            b.get("logprob").asDouble(),
            1e-4,
            "tp " + tp + " token " + i);
      }
    }
  }

  @Test
  void requestsThroughTheEngineOnTwoRanksGiveTheOutputOfOne() throws Exception {
    Path in = tmp.resolve("requests.jsonl");
    Files.writeString(
        in,
        "{\"prompt_ids\": [1, 2, 3], \"max_new_tokens\": 6}\n"
            + "{\"prompt\": \"import numpy as np\", \"max_new_tokens\": 6}\n"
            + "{\"prompt_ids\": [7, 8, 9, 10, 11], \"max_new_tokens\": 6}\n");
    String[] base = {"generate", "--model", model.toString(), "--requests", in.toString()};
    Run one = CommandLineTest.run(base);
    Run two = CommandLineTest.run(concat(base, "--tensor-parallel-size", "2"));
    assertEquals(0, one.code(), one.err());
    assertEquals(0, two.code(), two.err());
    String[] a = one.out().split("\n");
    String[] b = two.out().split("\n");
    assertEquals(3, a.length, one.out());
    assertEquals(a.length, b.length, two.out());
    for (int i = 0; i < a.length; i++) {
      JsonNode x = Json.MAPPER.readTree(a[i]);
      JsonNode y = Json.MAPPER.readTree(b[i]);
      assertEquals(x.get("text"), y.get("text"), "request " + i);
      assertEquals(x.get("tokens").size(), y.get("tokens").size(), "request " + i);
      for (int t = 0; t < x.get("tokens").size(); t++) {
        assertEquals(
            x.get("tokens").get(t).get("id"), y.get("tokens").get(t).get("id"), "request " + i);
      }
    }
  }

  @Test
  void sizesTheModelCannotBeSplitIntoAreRejectedNamingTheFlag() {
    Run three =
        CommandLineTest.run(
            "generate",
            "--model",
            model.toString(),
            "--prompt-ids",
            "1,2",
            "--tensor-parallel-size",
            "3");
    assertEquals(2, three.code(), three.err());
    assertTrue(
        three.err().contains("--tensor-parallel-size 3 does not divide n_head = 4"), three.err());
    assertTrue(!three.err().contains("\tat "), three.err());

    Run zero =
        CommandLineTest.run(
            "generate",
            "--model",
            tmp.resolve("not-loaded").toString(),
            "--prompt-ids",
            "1,2",
            "--tensor-parallel-size",
            "0");
    assertEquals(2, zero.code(), zero.err());
    assertTrue(
        zero.err()
            .contains("Invalid value for option '--tensor-parallel-size': must be >= 1, got 0"),
        zero.err());
    assertTrue(!zero.err().contains("not-loaded"), "rejected before the model is opened");
  }

  private static String[] concat(String[] a, String... b) {
    String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }
}
