package dev.starserve.text;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MergeFormatTest {
  @TempDir Path dir;

  @Test
  void pairMergesGiveTheSameIdsAsStringMergesOnAllConformanceTexts() throws IOException {
    ObjectNode json = TestTokenizers.starCoderJson();
    ArrayNode pairs = TestTokenizers.JSON.createArrayNode();
    for (JsonNode m : json.path("model").path("merges")) {
      String[] parts = m.asText().split(" ");
      pairs.addArray().add(parts[0]).add(parts[1]);
    }
    ((ObjectNode) json.get("model")).set("merges", pairs);
    Tokenizer fromPairs = TestTokenizers.load(dir, json);

    for (ConformanceTest.Case c : ConformanceTest.readConformance()) {
      assertArrayEquals(c.ids(), fromPairs.encode(c.text()), "line " + c.line());
    }
  }

  @Test
  void mergeRankIsTheOrderInTheList() {
    // the ids of ab / bc are 256 / 257 in the first file, 257 / 256 in the second
    Tokenizer abFirst = TestTokenizers.load(dir, TestTokenizers.byteLevel("a b", "b c"));
    Tokenizer bcFirst = TestTokenizers.load(dir, TestTokenizers.byteLevel("b c", "a b"));

    assertArrayEquals(new int[] {256, 'c'}, abFirst.encode("abc"));
    assertArrayEquals(new int[] {'a', 256}, bcFirst.encode("abc"));
  }

  @Test
  void pairAndStringFormatsMayBeMixedInOneSyntheticFile() {
    ObjectNode json = TestTokenizers.byteLevel("a b", "ab c");
    ArrayNode merges = (ArrayNode) json.path("model").path("merges");
    merges.set(1, TestTokenizers.JSON.createArrayNode().add("ab").add("c"));
    Tokenizer tok = TestTokenizers.load(dir, json);

    assertArrayEquals(new int[] {257, 'd', 257}, tok.encode("abcdabc"));
  }
}
