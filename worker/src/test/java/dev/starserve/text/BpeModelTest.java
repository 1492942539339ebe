package dev.starserve.text;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The heap-based BPE against the textbook algorithm (find the lowest-ranked adjacent pair, merge
 * its leftmost occurrence, repeat) written here on strings, on random single-word inputs.
 */
class BpeModelTest {
  private static Map<String, Integer> ranks;
  private static Map<String, Integer> vocab;
  private static final Tokenizer tok = Tokenizer.starCoder();

  @BeforeAll
  static void readMerges() {
    ObjectNode json = TestTokenizers.starCoderJson();
    ranks = new HashMap<>();
    int rank = 0;
    for (JsonNode m : json.path("model").path("merges")) {
      ranks.putIfAbsent(m.asText(), rank++);
    }
    vocab = new HashMap<>();
    json.path("model")
        .path("vocab")
        .properties()
        .forEach(e -> vocab.put(e.getKey(), e.getValue().intValue()));
  }

  /** The naive reference: O(n²) per merge, obviously correct. */
  private static int[] naiveBpe(String word) {
    List<String> symbols = new ArrayList<>();
    for (byte b : word.getBytes(StandardCharsets.UTF_8)) {
      symbols.add(String.valueOf(TestTokenizers.byteChar(b & 0xFF)));
    }
    while (true) {
      int best = -1;
      int bestRank = Integer.MAX_VALUE;
      for (int i = 0; i + 1 < symbols.size(); i++) {
        Integer r = ranks.get(symbols.get(i) + " " + symbols.get(i + 1));
        if (r != null && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) {
        break;
      }
      symbols.set(best, symbols.get(best) + symbols.remove(best + 1));
    }
    return symbols.stream().mapToInt(vocab::get).toArray();
  }

  @Test
  void heapBpeEqualsNaiveBpeOnRandomLetterWords() {
    Random random = new Random(11);
    String alphabet = "eeeeettttaaaooiinnsshhrrddllccuummwwffggyyppbbvkjxqzEATSOÉéèçñüßαβγжщ中文字";
    for (int trial = 0; trial < 3000; trial++) {
      StringBuilder word = new StringBuilder();
      if (random.nextBoolean()) {
        word.append(' '); // " word" is one pre-token: ' ?\p{L}+'
      }
      int length = 1 + random.nextInt(trial % 10 == 0 ? 300 : 15);
      for (int i = 0; i < length; i++) {
        word.append(alphabet.charAt(random.nextInt(alphabet.length())));
      }
      String w = word.toString();

      assertArrayEquals(naiveBpe(w), tok.encode(w), "word '" + w + "'");
    }
  }

  @Test
  void heapBpeEqualsNaiveBpeOnLongRepetitiveRuns() {
    for (String unit : new String[] {"a", "ab", "abc", "=", "-_", "\t"}) {
      String w = unit.repeat(701);
      if (unit.equals("\t")) {
        w = w + "x"; // whitespace before a letter: the run minus its last tab is one pre-token
        assertArrayEquals(
            TestTokenizers.concat(
                naiveBpe(w.substring(0, w.length() - 2)), naiveBpe("\t"), naiveBpe("x")),
            tok.encode(w));
      } else {
        assertArrayEquals(naiveBpe(w), tok.encode(w), unit);
      }
    }
  }
}
