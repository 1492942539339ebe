package dev.starserve.text;

import static dev.starserve.text.TestTokenizers.byteIds;
import static dev.starserve.text.TestTokenizers.concat;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Added tokens are found in the raw text before pre-tokenization with HF's flag semantics. The
 * expected splits of the single_word / lstrip / rstrip cases are those of HF's own {@code
 * added_vocabulary.rs} tests; the text between tokens of the byte-only test tokenizer encodes to
 * its UTF-8 bytes, so every expected id list is written out independently.
 */
class AddedTokensTest {
  @TempDir Path dir;

  @Test
  void singleWordTokenMatchesOnlyOutsideWords() {
    ObjectNode json = TestTokenizers.byteLevel();
    int mask = TestTokenizers.addToken(json, "<mask>", false, true, false, false, false);
    Tokenizer tok = TestTokenizers.load(dir, json);

    // HF test_single_word_is_correct (lowercased, as its Lowercase normalizer does)
    int[] ids = tok.encode("<mask> my name <mask> a<mask> <mask>ony <mask>");

    assertArrayEquals(
        concat(
            new int[] {mask},
            byteIds(" my name "),
            new int[] {mask},
            byteIds(" a<mask> <mask>ony "),
            new int[] {mask}),
        ids);
  }

  @Test
  void singleWordTreatsCombiningMarksAsWordButPunctuationNot() {
    ObjectNode json = TestTokenizers.byteLevel();
    int mask = TestTokenizers.addToken(json, "<mask>", false, true, false, false, false);
    Tokenizer tok = TestTokenizers.load(dir, json);

    // HF test_single_word_is_unicode_correct: U+0330 before the last <mask> is a mark (\w)
    int[] ids = tok.encode("<mask>, <mask>- \u25CC\u0330<mask>");

    assertArrayEquals(
        concat(new int[] {mask}, byteIds(", "), new int[] {mask}, byteIds("- \u25CC\u0330<mask>")),
        ids);
  }

  @Test
  void lstripAndRstripSwallowUnicodeWhitespaceButNotTwice() {
    ObjectNode json = TestTokenizers.byteLevel();
    int mask = TestTokenizers.addToken(json, "<mask>", false, true, true, true, false);
    Tokenizer tok = TestTokenizers.load(dir, json);

    // HF test_lstrip_unicode_space: " <mask> ", "\t<mask>\t", "<mask>\u2000" are tokens; the
    // third <mask> cannot lstrip the tab the second one already took
    int[] ids = tok.encode("hi <mask> there\t<mask>\t<mask>\u2000");

    assertArrayEquals(
        concat(byteIds("hi"), new int[] {mask}, byteIds("there"), new int[] {mask, mask}), ids);
  }

  @Test
  void lstripAloneKeepsTheSpaceAfter() {
    ObjectNode json = TestTokenizers.byteLevel();
    int tok1 = TestTokenizers.addToken(json, "[L]", false, false, true, false, false);
    Tokenizer tok = TestTokenizers.load(dir, json);

    assertArrayEquals(
        concat(byteIds("a"), new int[] {tok1}, byteIds(" b")), tok.encode("a \u00A0 [L] b"));
  }

  @Test
  void tokensMatchInsideWordsWithoutSingleWord() {
    ObjectNode json = TestTokenizers.byteLevel();
    int mask = TestTokenizers.addToken(json, "<mask>", false, false, false, false, false);
    Tokenizer tok = TestTokenizers.load(dir, json);

    assertArrayEquals(concat(byteIds("a"), new int[] {mask}, byteIds("b")), tok.encode("a<mask>b"));
  }

  @Test
  void longestAddedTokenWinsAtTheSameStart() {
    ObjectNode json = TestTokenizers.byteLevel();
    int ab = TestTokenizers.addToken(json, "<ab", true, false, false, false, false);
    int abc = TestTokenizers.addToken(json, "<abc>", true, false, false, false, false);
    int bc = TestTokenizers.addToken(json, "bc>x", true, false, false, false, false);
    Tokenizer tok = TestTokenizers.load(dir, json);

    // "<abc>" beats "<ab"; leftmost beats the later "bc>x" that overlaps it
    assertArrayEquals(concat(new int[] {abc}, byteIds("x")), tok.encode("<abc>x"));
    assertArrayEquals(concat(new int[] {ab}, byteIds("d")), tok.encode("<abd"));
    assertArrayEquals(concat(byteIds("a"), new int[] {bc}), tok.encode("abc>x"));
  }

  @Test
  void nonNormalizedTokensAreFoundBeforeNormalizedOnes() {
    ObjectNode json = TestTokenizers.byteLevel();
    int normalizedAb = TestTokenizers.addToken(json, "<ab", false, false, false, false, true);
    int plainBc = TestTokenizers.addToken(json, "bc>", false, false, false, false, false);
    Tokenizer tok = TestTokenizers.load(dir, json);

    // one leftmost pass would take "<ab"; HF first takes "bc>" over the whole text, and the
    // normalized "<ab" no longer fits in the gap "<a"
    assertArrayEquals(concat(byteIds("<a"), new int[] {plainBc}), tok.encode("<abc>"));
    assertArrayEquals(concat(new int[] {normalizedAb}, byteIds("x")), tok.encode("<abx"));
  }

  @Test
  void starChatSpecialTokensSplitAChatPromptAndAreSkippedOnDecode() {
    ObjectNode json = TestTokenizers.starCoderJson();
    int system = TestTokenizers.addToken(json, "<|system|>", true, false, false, false, false);
    int user = TestTokenizers.addToken(json, "<|user|>", true, false, false, false, false);
    int assistant =
        TestTokenizers.addToken(json, "<|assistant|>", true, false, false, false, false);
    int end = TestTokenizers.addToken(json, "<|end|>", true, false, false, false, false);
    Tokenizer chat = TestTokenizers.load(dir, json);
    Tokenizer base = Tokenizer.starCoder();
    String prompt =
        "<|system|>\nBe brief.<|end|>\n<|user|>\nWrite fib in Python<|end|>\n<|assistant|>";

    int[] ids = chat.encode(prompt);

    assertEquals(49152, system);
    assertEquals(49156, chat.vocabSize());
    assertArrayEquals(
        concat(
            new int[] {system},
            base.encode("\nBe brief."),
            new int[] {end},
            base.encode("\n"),
            new int[] {user},
            base.encode("\nWrite fib in Python"),
            new int[] {end},
            base.encode("\n"),
            new int[] {assistant}),
        ids);
    assertTrue(chat.isSpecial(assistant));
    assertEquals("<|assistant|>", chat.token(assistant));
    assertEquals(end, chat.tokenId("<|end|>"));
    assertEquals(prompt, chat.decode(ids, false));
    assertEquals("\nBe brief.\n\nWrite fib in Python\n", chat.decode(ids, true));
  }

  @Test
  void starCoderFimPromptDecodesWithoutSpecialTokensWhenAsked() {
    Tokenizer tok = Tokenizer.starCoder();
    String prompt = "<fim_prefix>def add(a, b):\n    <fim_suffix>\n<fim_middle>";

    int[] ids = tok.encode(prompt);

    assertEquals(1, ids[0]);
    assertEquals(2, ids[ids.length - 1]);
    assertTrue(tok.isSpecial(1));
    assertFalse(tok.isSpecial(ids[1]));
    assertEquals(prompt, tok.decode(ids, false));
    assertEquals("def add(a, b):\n    \n", tok.decode(ids, true));
  }

  @Test
  void nonSpecialAddedTokenIsKeptBySkipSpecialTokens() {
    ObjectNode json = TestTokenizers.byteLevel();
    int plain = TestTokenizers.addToken(json, "<plain>", false, false, false, false, false);
    int special = TestTokenizers.addToken(json, "<special>", true, false, false, false, false);
    Tokenizer tok = TestTokenizers.load(dir, json);

    int[] ids = tok.encode("a<plain>b<special>c");

    assertArrayEquals(
        concat(byteIds("a"), new int[] {plain}, byteIds("b"), new int[] {special}, byteIds("c")),
        ids);
    assertEquals("a<plain>bc", tok.decode(ids, true));
  }

  @Test
  void addedTokenWithASpaceDecodesToItsOwnUtf8() {
    ObjectNode json = TestTokenizers.byteLevel();
    int id = TestTokenizers.addToken(json, "<end of turn>", true, false, false, false, false);
    Tokenizer tok = TestTokenizers.load(dir, json);

    // ' ' is not a byte-level character, so HF's ByteLevel decoder keeps the content as is
    assertArrayEquals(
        "<end of turn>".getBytes(java.nio.charset.StandardCharsets.UTF_8), tok.tokenBytes(id));
    assertEquals("x<end of turn>", tok.decode(new int[] {'x', id}, false));
  }
}
