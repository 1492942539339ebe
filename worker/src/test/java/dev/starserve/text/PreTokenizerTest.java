package dev.starserve.text;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Pre-tokenizer pieces against the expectations of HF's own pre-tokenizer tests. */
class PreTokenizerTest {

  private static List<String> pieces(PreTokenizer p, String text) {
    List<String> out = new ArrayList<>();
    p.split(text, 0, text.length(), (t, s, e) -> out.add(t.subSequence(s, e).toString()));
    return out;
  }

  @Test
  void byteLevelSplitsLikeGpt2AndMapsBytes() {
    ByteLevel bl = new ByteLevel(false, true);

    assertEquals(
        List.of("Hello", "Ġmy", "Ġfriend", ",", "Ġhow", "Ġis", "Ġyour", "Ġday", "Ġgoing", "?"),
        pieces(bl, "Hello my friend, how is your day going?"));
    assertEquals(
        List.of("Hello", "Ġthere", "Ċ", "Hello", "Ġthere"), pieces(bl, "Hello there\nHello there"));
    assertEquals(
        List.of("Hello", "Ġthere", "ĠĠĠĠĠĠ", "Ġdear"), pieces(bl, "Hello there       dear"));
    assertEquals(List.of("i", "âŃ¢", "j"), pieces(bl, "i⭢j"));
  }

  @Test
  void byteLevelRegexEdgeCases() {
    ByteLevel bl = new ByteLevel(false, true);

    // contractions are lowercase only; a quote run swallows a following quote
    assertEquals(List.of("don", "'t", "ĠDON", "'", "T"), pieces(bl, "don't DON'T"));
    assertEquals(List.of("\"'", "s"), pieces(bl, "\"'s"));
    // \s+(?!\S) leaves the last space to the next word, but a lone tab stays alone
    assertEquals(List.of("ĊĠĠ", "Ġx"), pieces(bl, "\n   x"));
    assertEquals(List.of("ĉ", "x"), pieces(bl, "\tx"));
    assertEquals(List.of("Ġ", "ĉ", "x"), pieces(bl, " \tx"));
    assertEquals(List.of("ĠĠ"), pieces(bl, "  "));
    // NBSP (U+00A0) is \s in Oniguruma; Java's Character.isWhitespace says no
    assertEquals(List.of("a", "ÂłĠ", "Ġb"), pieces(bl, "a\u00A0  b"));
    // U+001F is not \s for Oniguruma; Java's Character.isWhitespace says yes
    assertEquals(List.of("a", "Ġ\u011F", "b"), pieces(bl, "a \u001Fb"));
    // ' ?\p{N}+' keeps a leading space; digits and letters split
    assertEquals(List.of("x", "Ġ12", "ab"), pieces(bl, "x 12ab"));
  }

  @Test
  void byteLevelWithPrefixSpaceAndWithoutRegex() {
    assertEquals(
        List.of("ĠHello", "Ġmy", "Ġfriend", ",", "Ġhow"),
        pieces(new ByteLevel(true, true), "Hello my friend, how"));
    assertEquals(
        List.of("ĠHello", "Ġmy", "Ġfriend", ",", "Ġhow"),
        pieces(new ByteLevel(true, true), " Hello my friend, how"));
    assertEquals(
        List.of("ĠHelloĠmyĠfriend,ĠhowĠisĠyourĠdayĠgoing?"),
        pieces(new ByteLevel(true, false), "Hello my friend, how is your day going?"));
  }

  @Test
  void digitsIsolatesEachDigitOrKeepsRuns() {
    assertEquals(
        List.of("Hey ", "1", "2", "3", " friend!"),
        pieces(new DigitsSplit(true), "Hey 123 friend!"));
    assertEquals(
        List.of("Hey ", "123", " friend!"), pieces(new DigitsSplit(false), "Hey 123 friend!"));
    // non-ASCII numerics (Nd, No) count too
    assertEquals(List.of("x", "٣", "½", "²"), pieces(new DigitsSplit(true), "x٣½²"));
  }

  @Test
  void sequenceFeedsEveryPieceToTheNextStep() {
    PreTokenizer starCoder =
        new PreTokenizer.Sequence(List.of(new DigitsSplit(true), new ByteLevel(false, true)));

    // the space before 42 is its own piece: the Digits cut comes first
    assertEquals(List.of("x", "Ġ", "4", "2", "Ġy"), pieces(starCoder, "x 42 y"));
  }

  @Test
  void splitBehavioursMatchHf() {
    // HF split.rs "basic": the inverted \w+|[^\w\s]+ regex, i.e. cutting on whitespace
    String text = "How are you doing?";
    String regex = "\\w+|[^\\w\\s]+";
    assertEquals(
        List.of("How", "are", "you", "doing", "?"),
        pieces(PatternSplit.regex(regex, PatternSplit.Behavior.REMOVED, true), text));
    assertEquals(
        List.of("How", " ", "are", " ", "you", " ", "doing", "?"),
        pieces(PatternSplit.regex(regex, PatternSplit.Behavior.ISOLATED, true), text));
    assertEquals(
        List.of("How ", "are ", "you ", "doing", "?"),
        pieces(PatternSplit.regex(regex, PatternSplit.Behavior.MERGED_WITH_PREVIOUS, true), text));
    assertEquals(
        List.of("How", " are", " you", " doing", "?"),
        pieces(PatternSplit.regex(regex, PatternSplit.Behavior.MERGED_WITH_NEXT, true), text));
    assertEquals(
        List.of("How", " ", "are", " ", "you", " ", "doing?"),
        pieces(PatternSplit.regex(regex, PatternSplit.Behavior.CONTIGUOUS, true), text));
  }

  @Test
  void splitOnALiteralStringEqualsSplitOnTheRegex() {
    assertEquals(
        List.of("Hey,", "man!"),
        pieces(PatternSplit.literal(" ", PatternSplit.Behavior.REMOVED, false), "Hey, man!"));
    assertEquals(
        List.of("Hey,", "man!"),
        pieces(PatternSplit.regex("\\s+", PatternSplit.Behavior.REMOVED, false), "Hey, man!"));
    // inverted "Hello" with Removed keeps only the Hellos
    assertEquals(
        List.of("Hello", "Hello", "Hello"),
        pieces(
            PatternSplit.literal("Hello", PatternSplit.Behavior.REMOVED, true),
            "Hello Hello Hello"));
  }
}
