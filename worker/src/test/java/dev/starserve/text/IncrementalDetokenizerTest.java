package dev.starserve.text;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class IncrementalDetokenizerTest {
  private final Tokenizer tok = Tokenizer.starCoder();

  private List<String> pieces(IncrementalDetokenizer d, int[] ids) {
    List<String> out = new ArrayList<>();
    for (int id : ids) {
      out.add(d.push(id));
    }
    out.add(d.flush());
    return out;
  }

  /** The byte-level token of one byte, e.g. 0xF0 → "ð". */
  private int byteToken(int b) {
    int id = tok.tokenId(String.valueOf(TestTokenizers.byteChar(b)));
    assertTrue(id >= 0, "no token for byte " + b);
    return id;
  }

  @Test
  void emojiSplitOverFourByteTokensComesOutWhole() {
    int[] ids = {byteToken(0xF0), byteToken(0x9F), byteToken(0x98), byteToken(0x80)};

    List<String> pieces = pieces(tok.newDetokenizer(false), ids);

    assertEquals(List.of("", "", "", "\uD83D\uDE00", ""), pieces);
    assertEquals("\uD83D\uDE00", tok.decode(ids, false));
  }

  @Test
  void encodedEmojiIsHeldBackUntilItsLastToken() {
    int[] ids = tok.encode("x😀");
    assertTrue(ids.length >= 3, "x plus at least two tokens for the emoji");

    List<String> pieces = pieces(tok.newDetokenizer(false), ids);

    List<String> expected = new ArrayList<>();
    expected.add("x");
    for (int i = 1; i < ids.length - 1; i++) {
      expected.add("");
    }
    expected.add("😀");
    expected.add("");
    assertEquals(expected, pieces);
  }

  @Test
  void cjkAndEmojiInTextAreNeverCutInHalf() {
    String text = "def 你好(世界):\n    return '👩‍💻 ok 😀'";
    int[] ids = tok.encode(text);

    List<String> pieces = pieces(tok.newDetokenizer(false), ids);

    assertEquals(text, String.join("", pieces));
    for (String p : pieces) {
      assertTrue(text.contains(p), "piece not in text: " + p);
      assertFalse(hasLoneSurrogate(p), p);
      assertFalse(p.contains("\uFFFD"), p);
    }
  }

  @Test
  void invalidBytesBecomeReplacementCharactersExactlyAsFullDecode() {
    // F0 9F 98 (an emoji cut short), then 'a', then a lone continuation byte, then E2 82 at end
    int[] ids = {
      byteToken(0xF0),
      byteToken(0x9F),
      byteToken(0x98),
      tok.tokenId("a"),
      byteToken(0x80),
      byteToken(0xE2),
      byteToken(0x82)
    };

    List<String> pieces = pieces(tok.newDetokenizer(false), ids);

    assertEquals("\uFFFDa\uFFFD\uFFFD", tok.decode(ids, false));
    assertEquals(List.of("", "", "", "\uFFFDa", "\uFFFD", "", "", "\uFFFD"), pieces);
  }

  @Test
  void randomIdSequencesConcatenateToTheFullDecode() {
    Random random = new Random(20261128);
    // StarCoder has no tokens for C0, C1, F1 and F5..FF (bytes of no UTF-8 its data held)
    int[] highBytes =
        java.util.stream.IntStream.range(0x80, 0x100)
            .map(b -> tok.tokenId(String.valueOf(TestTokenizers.byteChar(b))))
            .filter(id -> id >= 0)
            .toArray();
    assertEquals(128 - 14, highBytes.length);
    for (int trial = 0; trial < 3000; trial++) {
      int[] ids = new int[1 + random.nextInt(40)];
      for (int i = 0; i < ids.length; i++) {
        // half lone high bytes (mostly invalid UTF-8 runs), half any token, specials included
        ids[i] =
            random.nextBoolean()
                ? highBytes[random.nextInt(highBytes.length)]
                : random.nextInt(tok.vocabSize());
      }
      for (boolean skip : new boolean[] {false, true}) {
        List<String> pieces = pieces(tok.newDetokenizer(skip), ids);

        assertEquals(tok.decode(ids, skip), String.join("", pieces), "trial " + trial);
        for (String p : pieces) {
          assertFalse(hasLoneSurrogate(p), "trial " + trial + " piece " + p);
        }
      }
    }
  }

  @Test
  void skipSpecialTokensDropsThemButKeepsBytesAroundThemTogether() {
    // 'é' = C3 A9 with <fim_middle> between its two bytes: HF filters ids first, then decodes
    int[] ids = {byteToken(0xC3), 2, byteToken(0xA9)};

    assertEquals("é", String.join("", pieces(tok.newDetokenizer(true), ids)));
    assertEquals("é", tok.decode(ids, true));
    assertEquals("\uFFFD<fim_middle>\uFFFD", tok.decode(ids, false));
    assertEquals(
        "\uFFFD<fim_middle>\uFFFD", String.join("", pieces(tok.newDetokenizer(false), ids)));
  }

  @Test
  void flushStartsAFreshStream() {
    IncrementalDetokenizer d = tok.newDetokenizer(false);
    assertEquals("", d.push(byteToken(0xE4)));
    assertEquals("\uFFFD", d.flush());
    assertEquals("x", d.push(tok.tokenId("x")));
    assertEquals("", d.flush());
  }

  @Test
  void unknownIdIsRejectedNamingTheIdAndVocabSize() {
    IncrementalDetokenizer d = tok.newDetokenizer(false);

    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> d.push(49152));
    assertEquals("token id 49152 is not in the vocabulary (vocab size 49152)", e.getMessage());
    IllegalArgumentException neg =
        assertThrows(IllegalArgumentException.class, () -> tok.decode(new int[] {5, -1}, false));
    assertTrue(neg.getMessage().contains("token id -1"), neg.getMessage());
  }

  private static boolean hasLoneSurrogate(String s) {
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (Character.isHighSurrogate(c)) {
        if (i + 1 >= s.length() || !Character.isLowSurrogate(s.charAt(i + 1))) {
          return true;
        }
        i++;
      } else if (Character.isLowSurrogate(c)) {
        return true;
      }
    }
    return false;
  }

  @Test
  void aWholeTokenAfterNothingPendingIsTheSharedTextAndMatchesAFullDecodeForEveryId() {
    int shared = 0;
    for (int id = 0; id < tok.vocabSize(); id++) {
      IncrementalDetokenizer a = tok.newDetokenizer(false);
      IncrementalDetokenizer b = tok.newDetokenizer(false);
      String first = a.push(id);
      String again = b.push(id);
      assertEquals(tok.decode(new int[] {id}, false), first + a.flush(), "id " + id);
      if (!first.isEmpty() && first == again) {
        shared++; // no text made per push: the tokenizer's own string
      }
    }
    // Every id but those ending inside a UTF-8 character (byte tokens, some CJK pieces).
    assertTrue(shared > 45_000, shared + " ids streamed without a copy");
  }

  @Test
  void afterAPendingByteTheNextTokenStillDecodesAsAWhole() {
    int hello = tok.tokenId("hello");
    assertTrue(hello >= 0, "no token 'hello'");
    int[] ids = {byteToken(0xC3), byteToken(0xA9), hello, byteToken(0xE2), hello};

    List<String> pieces = pieces(tok.newDetokenizer(false), ids);

    assertEquals(tok.decode(ids, false), String.join("", pieces));
    assertEquals(List.of("", "é", "hello", "", "\uFFFDhello", ""), pieces);
  }
}
