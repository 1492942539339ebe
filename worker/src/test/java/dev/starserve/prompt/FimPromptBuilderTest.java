package dev.starserve.prompt;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.text.Tokenizer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FimPromptBuilderTest {
  private final Tokenizer starCoder = Tokenizer.starCoder();

  private static int[] concat(int[]... parts) {
    return Arrays.stream(parts).flatMapToInt(IntStream::of).toArray();
  }

  @Test
  void starCoderPromptIsPrefixSuffixMiddleWithTheUnderscoreTokenIds() {
    FimPromptBuilder fim = FimPromptBuilder.forTokenizer(starCoder);
    String prefix = "def add(a, b):\n    ";
    String suffix = "\n\nprint(add(1, 2))\n";

    int[] ids = fim.build(prefix, suffix);

    assertTrue(fim.supported());
    // StarCoder's tokenizer.json: <fim_prefix> 1, <fim_middle> 2, <fim_suffix> 3.
    assertArrayEquals(
        concat(
            new int[] {1},
            starCoder.encode(prefix),
            new int[] {3},
            starCoder.encode(suffix),
            new int[] {2}),
        ids);
    assertEquals(
        "<fim_prefix>" + prefix + "<fim_suffix>" + suffix + "<fim_middle>",
        starCoder.decode(ids, false));
  }

  @Test
  void piecesAreEncodedSeparatelySoTextNeverMergesAcrossTheFimTokens() {
    FimPromptBuilder fim = FimPromptBuilder.forTokenizer(starCoder);

    int[] ids = fim.build("x = 1  ", "  y");

    // Encoded as one string, the spaces on either side of the cut could merge into one token.
    int[] expected =
        concat(
            new int[] {1},
            starCoder.encode("x = 1  "),
            new int[] {3},
            starCoder.encode("  y"),
            new int[] {2});
    assertArrayEquals(expected, ids);
  }

  @Test
  void emptyPrefixAndSuffixGiveTheThreeTokensAlone() {
    assertArrayEquals(new int[] {1, 3, 2}, FimPromptBuilder.forTokenizer(starCoder).build("", ""));
  }

  @Test
  void literalSpecialTokenTextInsideTheCodeIsEncodedAsTheSpecialToken() {
    FimPromptBuilder fim = FimPromptBuilder.forTokenizer(starCoder);

    int[] ids = fim.build("s = '<|endoftext|>'", "");

    // As HF's tokenizer(text): the literal becomes id 0, between the quotes' tokens.
    assertArrayEquals(
        concat(
            new int[] {1},
            starCoder.encode("s = '"),
            new int[] {0},
            starCoder.encode("'"),
            new int[] {3, 2}),
        ids);
  }

  @Test
  void santaCoderDashSpellingIsFound(@TempDir Path dir) {
    Tokenizer santa = PromptTokenizers.load(dir, PromptTokenizers.dashFimJson(), null);
    FimPromptBuilder fim = FimPromptBuilder.forTokenizer(santa);

    int[] ids = fim.build("a", "b");

    assertTrue(fim.supported());
    assertEquals("<fim-prefix>a<fim-suffix>b<fim-middle>", santa.decode(ids, false));
    assertEquals(santa.tokenId("<fim-prefix>"), ids[0]);
    assertEquals(santa.tokenId("<fim-middle>"), ids[ids.length - 1]);
  }

  @Test
  void modelWithoutFimTokensIsUnsupportedAndBuildSaysSo(@TempDir Path dir) {
    Tokenizer plain = PromptTokenizers.load(dir, PromptTokenizers.noFimJson(), null);
    FimPromptBuilder fim = FimPromptBuilder.forTokenizer(plain);

    assertFalse(fim.supported());
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> fim.build("a", "b"));
    assertEquals(
        "this model has no fill-in-the-middle tokens (<fim_prefix>/<fim-prefix>)", e.getMessage());
  }

  @Test
  void nullPiecesAreRejectedByName() {
    FimPromptBuilder fim = FimPromptBuilder.forTokenizer(starCoder);

    assertEquals(
        "prefix must be a string, got null",
        assertThrows(IllegalArgumentException.class, () -> fim.build(null, "")).getMessage());
    assertEquals(
        "suffix must be a string, got null",
        assertThrows(IllegalArgumentException.class, () -> fim.build("", null)).getMessage());
  }
}
