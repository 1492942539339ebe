package dev.starserve.text;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class StopCheckerTest {

  /** What every append and the flush returned, in order. */
  private static List<String> run(StopChecker checker, String... pieces) {
    List<String> out = new ArrayList<>();
    for (String p : pieces) {
      out.add(checker.append(p));
      if (checker.stopped()) {
        return out;
      }
    }
    out.add(checker.flush());
    return out;
  }

  /**
   * The reference, on the whole text: the earliest start where some stop string occurs, and the
   * longest stop string there; null when none occurs.
   */
  private static String[] referenceMatch(String text, List<String> stops) {
    for (int i = 0; i < text.length(); i++) {
      String best = null;
      for (String s : stops) {
        if (text.startsWith(s, i) && (best == null || s.length() > best.length())) {
          best = s;
        }
      }
      if (best != null) {
        return new String[] {String.valueOf(i), best};
      }
    }
    return null;
  }

  /** The reference of what may be shown after {@code text}: up to the first possible start. */
  private static int referenceSafeLength(String text, List<String> stops) {
    for (int i = 0; i < text.length(); i++) {
      String rest = text.substring(i);
      for (String s : stops) {
        if (s.startsWith(rest) || rest.startsWith(s)) {
          return i;
        }
      }
    }
    return text.length();
  }

  @Test
  void stopStringSpanningSeveralPiecesIsCutAndNothingOfItIsShown() {
    StopChecker checker = new StopChecker(List.of("\ndef"), false);

    List<String> out = run(checker, "foo", "\n", "de", "f bar");

    assertEquals(List.of("foo", "", "", ""), out);
    assertTrue(checker.stopped());
    assertEquals("\ndef", checker.matchedStopSequence());
  }

  @Test
  void stopStringStartingInsideAPieceKeepsTheTextBeforeIt() {
    StopChecker checker = new StopChecker(List.of("\ndef"), false);

    assertEquals("foo", checker.append("foo\nde"));
    assertFalse(checker.stopped());
    assertEquals("", checker.append("f"));
    assertTrue(checker.stopped());
  }

  @Test
  void heldBackPrefixIsReleasedWhenTheTextGoesAnotherWay() {
    StopChecker checker = new StopChecker(List.of("\ndef"), false);

    assertEquals("x", checker.append("x\nd"));
    assertEquals("\ndo", checker.append("o"));
    assertEquals("", checker.append("\n"));
    assertEquals("\n", checker.flush());
    assertFalse(checker.stopped());
    assertNull(checker.matchedStopSequence());
  }

  @Test
  void includeStopSequenceReturnsTheStopStringAndDropsTheRestOfThePiece() {
    StopChecker checker = new StopChecker(List.of("</s>"), true);

    List<String> out = run(checker, "ans", "wer</", "s>trailing");

    assertEquals(List.of("ans", "wer", "</s>"), out);
  }

  @Test
  void earliestStartingStopWinsEvenWhenALaterOneEndsFirst() {
    // "bc" is complete after "abc", but "abcd" starts earlier: the checker must wait for it.
    StopChecker checker = new StopChecker(List.of("bc", "abcd"), false);

    assertEquals("x", checker.append("xabc"));
    assertFalse(checker.stopped());
    assertEquals("", checker.append("d"));
    assertEquals("abcd", checker.matchedStopSequence());
  }

  @Test
  void laterStopEndingFirstWinsWhenTheEarlierOneFails() {
    StopChecker checker = new StopChecker(List.of("bc", "abcd"), false);

    assertEquals("x", checker.append("xabc"));
    assertEquals("xa", "x" + checker.append("e"));
    assertEquals("bc", checker.matchedStopSequence());
  }

  @Test
  void longestStopWinsAtTheSameStart() {
    StopChecker checker = new StopChecker(List.of("\n", "\n\n"), true);

    assertEquals("a", checker.append("a\n"));
    assertEquals("\n\n", checker.append("\nb"));
    assertEquals("\n\n", checker.matchedStopSequence());
  }

  @Test
  void completeMatchWaitingOnALongerOneIsFinalAtFlush() {
    StopChecker checker = new StopChecker(List.of("ab", "abc"), false);

    assertEquals("x", checker.append("xab"));
    assertFalse(checker.stopped());
    assertEquals("", checker.flush());
    assertTrue(checker.stopped());
    assertEquals("ab", checker.matchedStopSequence());
    assertEquals("", checker.flush());
  }

  @Test
  void appendAfterStopOrFlushIsAnError() {
    StopChecker stoppedChecker = new StopChecker(List.of("x"), false);
    stoppedChecker.append("ax");
    IllegalStateException e =
        assertThrows(IllegalStateException.class, () -> stoppedChecker.append("more"));
    assertTrue(e.getMessage().contains("stopped"), e.getMessage());

    StopChecker flushed = new StopChecker(List.of("x"), false);
    flushed.append("a");
    flushed.flush();
    assertThrows(IllegalStateException.class, () -> flushed.append("b"));
  }

  @Test
  void withoutStopStringsEverythingPassesStraightThrough() {
    StopChecker checker = new StopChecker(List.of(), false);

    assertEquals(List.of("a", "b\n", ""), run(checker, "a", "b\n"));
  }

  @Test
  void surrogatePairIsNeverSplitWhenHeldBack() {
    // The stop starts with the emoji: the whole emoji (both chars) is held back, never half.
    StopChecker checker = new StopChecker(List.of("😀!"), false);

    assertEquals("é", checker.append("é😀"));
    assertEquals("😀?", checker.append("?"));

    StopChecker stopping = new StopChecker(List.of("😀!"), false);
    assertEquals(List.of("日本", ""), run(stopping, "日本😀", "!", "tail"));
    assertTrue(stopping.stopped());
  }

  @Test
  void emojiThatOnlySharesAHighSurrogateWithTheStopIsReleased() {
    // U+1F600 and U+1F601 share their high surrogate; the pieces are whole characters.
    StopChecker checker = new StopChecker(List.of("\uD83D\uDE01"), false);

    assertEquals("a\uD83D\uDE00", checker.append("a\uD83D\uDE00"));
    assertEquals("b", checker.append("b\uD83D\uDE01"));
    assertTrue(checker.stopped());
  }

  @Test
  void randomTextsAndCutsGiveTheReferenceCutAndReleaseAsEarlyAsPossible() {
    Random random = new Random(20240611);
    String[] alphabet = {"a", "b", "\n", "😀", "é"};
    for (int trial = 0; trial < 3000; trial++) {
      List<String> stops = new ArrayList<>();
      int nStops = random.nextInt(4);
      for (int s = 0; s < nStops; s++) {
        stops.add(randomText(random, alphabet, 1 + random.nextInt(4)));
      }
      List<String> chars = new ArrayList<>();
      int length = random.nextInt(30);
      for (int k = 0; k < length; k++) {
        chars.add(alphabet[random.nextInt(alphabet.length)]);
      }
      String text = String.join("", chars);
      boolean include = random.nextBoolean();
      String[] match = referenceMatch(text, stops);
      String expected =
          match == null
              ? text
              : text.substring(0, Integer.parseInt(match[0]) + (include ? match[1].length() : 0));

      StopChecker checker = new StopChecker(stops, include);
      StringBuilder shown = new StringBuilder();
      StringBuilder fed = new StringBuilder();
      int k = 0;
      while (k < chars.size() && !checker.stopped()) {
        int n = 1 + random.nextInt(4);
        String piece = String.join("", chars.subList(k, Math.min(chars.size(), k + n)));
        k += n;
        fed.append(piece);
        shown.append(checker.append(piece));
        String context = "stops " + stops + " text " + text + " fed " + fed;
        assertTrue(expected.startsWith(shown.toString()), context);
        if (!checker.stopped()) {
          int safe = referenceSafeLength(fed.toString(), stops);
          assertEquals(fed.substring(0, safe), shown.toString(), context);
        }
      }
      shown.append(checker.flush());
      String context = "stops " + stops + " text " + text;
      assertEquals(expected, shown.toString(), context);
      assertEquals(match != null, checker.stopped(), context);
      assertEquals(match == null ? null : match[1], checker.matchedStopSequence(), context);
    }
  }

  private static String randomText(Random random, String[] alphabet, int length) {
    StringBuilder b = new StringBuilder();
    for (int k = 0; k < length; k++) {
      b.append(alphabet[random.nextInt(alphabet.length)]);
    }
    return b.toString();
  }

  @Test
  void longRepetitiveTextAgainstMaximalStopsStillFindsTheMatch() {
    // Sixteen 240-char stops of 'a's that differ only in their last char, and 100k 'a's: every
    // position is a possible start, the case a naive rescan would handle in O(n × stops × len²).
    List<String> stops = new ArrayList<>();
    for (int s = 0; s < StopChecker.MAX_STOP_SEQUENCES; s++) {
      stops.add("a".repeat(StopChecker.MAX_STOP_LENGTH - 1) + (char) ('b' + s));
    }
    StopChecker checker = new StopChecker(stops, false);
    StringBuilder shown = new StringBuilder();
    for (int i = 0; i < 100_000; i++) {
      shown.append(checker.append("a"));
    }
    assertEquals(100_000 - (StopChecker.MAX_STOP_LENGTH - 1), shown.length());
    shown.append(checker.append("e"));

    assertTrue(checker.stopped());
    assertEquals(stops.get(3), checker.matchedStopSequence());
    assertEquals(100_000 - (StopChecker.MAX_STOP_LENGTH - 1), shown.length());
  }

  @Test
  void detokenizedStarCoderOutputIsCutExactlyAtTheStop() {
    Tokenizer tok = Tokenizer.starCoder();
    String text = "def f(x):\n    return x  # 日本語 😀\n\n\ndef g():\n    pass\n";
    int[] ids = tok.encode(text);
    IncrementalDetokenizer detok = tok.newDetokenizer(false);
    StopChecker checker = new StopChecker(List.of("\n\n\n", "\ndef "), false);

    StringBuilder shown = new StringBuilder();
    for (int id : ids) {
      shown.append(checker.append(detok.push(id)));
      if (checker.stopped()) {
        break;
      }
    }

    assertTrue(checker.stopped());
    assertEquals("\n\n\n", checker.matchedStopSequence());
    assertEquals("def f(x):\n    return x  # 日本語 😀", shown.toString());
  }

  @Test
  void aStopThatIsACharacterSplitOverSeveralByteTokensIsCutExactly() {
    Tokenizer tok = Tokenizer.starCoder();
    String text = "print('done 😀 ok')\n";
    int[] ids = tok.encode(text);
    // the emoji's four UTF-8 bytes are spread over more than one token
    long partial =
        java.util.stream.IntStream.of(ids)
            .filter(id -> tok.decode(new int[] {id}, false).contains("\uFFFD"))
            .count();
    assertTrue(partial >= 2, "the emoji should take several byte tokens, got " + partial);

    for (String stop : List.of("😀", "ne 😀 o")) {
      IncrementalDetokenizer detok = tok.newDetokenizer(false);
      StopChecker checker = new StopChecker(List.of(stop), false);
      StringBuilder shown = new StringBuilder();
      for (int id : ids) {
        shown.append(checker.append(detok.push(id)));
        if (checker.stopped()) {
          break;
        }
      }

      assertTrue(checker.stopped(), stop);
      assertEquals(text.substring(0, text.indexOf(stop)), shown.toString(), stop);
    }
  }

  @Test
  void badStopListsAreRejectedNamingStop() {
    assertMessage("stop must be a list", () -> new StopChecker(null, false));
    assertMessage(
        "stop may have at most 16 strings, got 17",
        () -> new StopChecker(Collections.nCopies(17, "x"), false));
    assertMessage(
        "stop[1] must be a non-empty string", () -> new StopChecker(List.of("a", ""), false));
    assertMessage(
        "stop[0] must be at most 240 characters, got 241",
        () -> new StopChecker(List.of("x".repeat(241)), false));
    assertMessage(
        "stop[0] is not well-formed text: lone surrogate at index 1",
        () -> new StopChecker(List.of("a\uDE00"), false));
    assertMessage(
        "stop[0] is not well-formed text: lone surrogate at index 0",
        () -> new StopChecker(List.of("\uD83D"), false));
    List<String> withNull = new ArrayList<>();
    withNull.add(null);
    assertMessage("stop[0] must be a non-empty string", () -> new StopChecker(withNull, false));
  }

  private static void assertMessage(String start, Runnable r) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, r::run);
    assertTrue(e.getMessage().startsWith(start), e.getMessage());
  }

  @Test
  void aPieceThatIsNotHeldBackComesOutAsTheSameStringAndAHeldOneDoesNot() {
    StopChecker none = new StopChecker(List.of(), false);
    String piece = new String("def f():"); // a fresh instance, so identity means no copy
    assertSame(piece, none.append(piece));

    StopChecker stops = new StopChecker(List.of("\n\n"), false);
    String line = new String("x = 1");
    assertSame(line, stops.append(line), "nothing in it can start the stop string");
    assertEquals("", stops.append("\n"));
    assertEquals("\ny", stops.append("y"));
    assertEquals("z", stops.append("z\n\n"));
    assertTrue(stops.stopped());
  }
}
