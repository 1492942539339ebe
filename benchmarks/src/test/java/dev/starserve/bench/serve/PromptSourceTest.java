package dev.starserve.bench.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import dev.starserve.text.Tokenizer;
import java.util.HashSet;
import org.junit.jupiter.api.Test;

/** The prompt lengths hold with the StarCoder tokenizer the worker ships (the reference). */
class PromptSourceTest {
  private static final Tokenizer STARCODER = Tokenizer.starCoder();

  @Test
  void everyWordWithItsSpaceIsOneStarCoderToken() {
    assertEquals(200, new HashSet<>(PromptSource.WORDS).size(), "200 distinct words");
    for (String w : PromptSource.WORDS) {
      assertEquals(1, STARCODER.encode(" " + w).length, "' " + w + "' is one token");
    }
  }

  @Test
  void aPromptOfPWordsIsPStarCoderTokens() {
    for (int p : new int[] {1, 16, 64, 1000}) {
      PromptSource source = new PromptSource(42, p);
      for (int i = 0; i < 5; i++) {
        assertEquals(p, STARCODER.encode(source.prompt(i)).length, p + " words, prompt " + i);
      }
    }
  }

  @Test
  void promptsDependOnlyOnSeedAndIndex() {
    PromptSource a = new PromptSource(7, 32);
    PromptSource b = new PromptSource(7, 32);
    assertEquals(a.prompt(3), b.prompt(3));
    assertEquals(a.prompt(3), a.prompt(3));
    assertNotEquals(a.prompt(3), a.prompt(4));
    assertNotEquals(a.prompt(3), new PromptSource(8, 32).prompt(3));
  }
}
