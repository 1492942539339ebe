package dev.starserve.text;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The StarCoder tokenizer against {@code conformance.jsonl}: 1517 texts with the ids the real
 * HuggingFace tokenizers library (0.21.0) gives them.
 */
class ConformanceTest {
  private static final int EXPECTED_LINES = 1517;

  record Case(int line, String text, int[] ids) {}

  private static List<Case> cases;

  @BeforeAll
  static void readCases() throws IOException {
    cases = readConformance();
  }

  static List<Case> readConformance() throws IOException {
    ObjectMapper json = new ObjectMapper();
    List<Case> out = new ArrayList<>();
    try (InputStream in = ConformanceTest.class.getResourceAsStream("/conformance.jsonl");
        BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
      String line;
      while ((line = r.readLine()) != null) {
        JsonNode node = json.readTree(line);
        int[] ids = new int[node.get("ids").size()];
        for (int i = 0; i < ids.length; i++) {
          ids[i] = node.get("ids").get(i).intValue();
        }
        out.add(new Case(out.size() + 1, node.get("text").asText(), ids));
      }
    }
    return out;
  }

  @Test
  void everyLineEncodesToExactlyTheHfIds() {
    Tokenizer tok = Tokenizer.starCoder();
    List<String> failures = new ArrayList<>();
    for (Case c : cases) {
      int[] got = tok.encode(c.text());
      if (!Arrays.equals(got, c.ids())) {
        failures.add(
            "line "
                + c.line()
                + " "
                + quote(c.text())
                + "\n  want "
                + Arrays.toString(c.ids())
                + "\n  got  "
                + Arrays.toString(got));
      }
    }
    System.out.printf(
        "conformance encode: %d/%d lines match%n", cases.size() - failures.size(), cases.size());
    assertEquals(EXPECTED_LINES, cases.size());
    assertTrue(
        failures.isEmpty(),
        failures.size()
            + " mismatches, first: "
            + String.join("\n", failures.subList(0, Math.min(5, failures.size()))));
  }

  @Test
  void everyLineDecodesBackToItsText() {
    Tokenizer tok = Tokenizer.starCoder();
    List<String> failures = new ArrayList<>();
    for (Case c : cases) {
      String got = tok.decode(c.ids(), false);
      if (!got.equals(c.text())) {
        failures.add("line " + c.line() + " want " + quote(c.text()) + " got " + quote(got));
      }
    }
    System.out.printf(
        "conformance decode: %d/%d lines match%n", cases.size() - failures.size(), cases.size());
    assertEquals(EXPECTED_LINES, cases.size());
    assertTrue(
        failures.isEmpty(), () -> failures.size() + " mismatches, first: " + failures.getFirst());
  }

  @Test
  void incrementalDetokenizerReproducesEveryLine() {
    Tokenizer tok = Tokenizer.starCoder();
    for (Case c : cases) {
      IncrementalDetokenizer detok = tok.newDetokenizer(false);
      StringBuilder sb = new StringBuilder();
      for (int id : c.ids()) {
        sb.append(detok.push(id));
      }
      sb.append(detok.flush());
      assertEquals(c.text(), sb.toString(), "line " + c.line());
    }
  }

  static String quote(String s) {
    StringBuilder sb = new StringBuilder("\"");
    s.codePoints()
        .forEach(
            cp -> {
              if (cp < 0x20 || cp > 0x7E) {
                sb.append(String.format("\\u{%x}", cp));
              } else {
                sb.appendCodePoint(cp);
              }
            });
    return sb.append('"').toString();
  }
}
