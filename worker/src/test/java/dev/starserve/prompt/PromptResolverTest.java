package dev.starserve.prompt;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.starserve.text.Tokenizer;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every prompt form through {@link PromptResolver} with the real StarCoder tokenizer (and the
 * StarChat variant of it): the exact token ids and the stops the format adds.
 */
class PromptResolverTest {
  private final Tokenizer starCoder = Tokenizer.starCoder();

  // Ids recorded from bigcode/starcoder by HF text-generation-inference's integration tests
  // (see the tokenizer's README), so independent of this tokenizer.
  static final int[] DEF_PRINT_HELLO = {589, 1459, 81, 7656};
  static final int[] DEF_GEOMETRIC_MEAN = {
    589, 3226, 21017, 81, 6009, 26, 62, 44, 1682, 77, 1808, 10794
  };

  static final int FIM_PREFIX = 1;
  static final int FIM_MIDDLE = 2;
  static final int FIM_SUFFIX = 3;
  static final int NEWLINE = 203; // "\n" in conformance.jsonl

  @Test
  void fillInTheMiddleIsPrefixSuffixMiddleWithStarCodersIds() {
    ResolvedPrompt p =
        new PromptResolver(starCoder)
            .resolve(
                new PromptSpec.FillInTheMiddle(
                    "def print_hello", "def geometric_mean(L: List[float]):"));

    int[] expected = new int[1 + 4 + 1 + 12 + 1];
    expected[0] = FIM_PREFIX;
    System.arraycopy(DEF_PRINT_HELLO, 0, expected, 1, 4);
    expected[5] = FIM_SUFFIX;
    System.arraycopy(DEF_GEOMETRIC_MEAN, 0, expected, 6, 12);
    expected[18] = FIM_MIDDLE;
    assertArrayEquals(expected, p.ids());
    assertArrayEquals(new int[0], p.stopTokenIds()); // the middle ends with <|endoftext|>: EOS
    assertEquals(List.of(), p.stopSequences());
  }

  @Test
  void fillInTheMiddleOnATokenizerWithoutFimTokensIsAClearError(@TempDir Path dir) {
    Tokenizer plain = PromptTokenizers.load(dir, PromptTokenizers.noFimJson(), null);
    PromptResolver resolver = new PromptResolver(plain); // other forms still work

    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> resolver.resolve(new PromptSpec.FillInTheMiddle("a", "b")));

    assertEquals(
        "this model has no fill-in-the-middle tokens (<fim_prefix>/<fim-prefix>)", e.getMessage());
    assertArrayEquals(
        DEF_PRINT_HELLO, resolver.resolve(new PromptSpec.Text("def print_hello")).ids());
  }

  @Test
  void chatOnBaseStarCoderIsTheTechAssistantDialogueAndStopsAtTheNextHumanTurn() {
    ResolvedPrompt p =
        new PromptResolver(starCoder)
            .resolve(
                new PromptSpec.Chat(
                    List.of(ChatMessage.system("Be brief."), ChatMessage.user("def print_hello"))));

    assertArrayEquals(
        starCoder.encode("Be brief.\n\n-----\n\nHuman: def print_hello\n\nAssistant:"), p.ids());
    assertArrayEquals(new int[0], p.stopTokenIds());
    assertEquals(List.of("\nHuman:", "\n-----"), p.stopSequences());
  }

  @Test
  void chatOnAStarChatTokenizerUsesItsSpecialIdsAndStopsAtEnd(@TempDir Path dir) {
    Tokenizer starChat = PromptTokenizers.load(dir, PromptTokenizers.starChatJson(), null);

    ResolvedPrompt p =
        new PromptResolver(starChat)
            .resolve(new PromptSpec.Chat(List.of(ChatMessage.user("def print_hello"))));

    int system = 49152;
    int user = 49153;
    int assistant = 49154;
    int end = 49155;
    // <|system|>\n<|end|>\n<|user|>\ndef print_hello<|end|>\n<|assistant|>
    assertArrayEquals(
        new int[] {
          system, NEWLINE, end, NEWLINE, user, NEWLINE, 589, 1459, 81, 7656, end, NEWLINE, assistant
        },
        p.ids());
    assertArrayEquals(new int[] {end}, p.stopTokenIds());
    assertEquals(List.of(), p.stopSequences());
  }

  @Test
  void chatWithATemplateEndsTurnsWithItsEosTokenWhichBecomesAStopId(@TempDir Path dir) {
    // StarChat-beta: tokenizer_config.json says eos_token <|end|>, config.json's EOS is 0
    Tokenizer tok =
        PromptTokenizers.load(
            dir,
            PromptTokenizers.starChatJson(),
            PromptTokenizers.config(
                JinjaChatTemplateTest.STARCHAT_TEMPLATE, "<|endoftext|>", "<|end|>"));

    ResolvedPrompt p =
        new PromptResolver(tok).resolve(new PromptSpec.Chat(List.of(ChatMessage.user("Hi"))));

    // <|user|>\nHi<|end|>\n<|assistant|>\n  ("Hi" is one token, 12575)
    assertArrayEquals(new int[] {49153, NEWLINE, 12575, 49155, NEWLINE, 49154, NEWLINE}, p.ids());
    assertArrayEquals(new int[] {49155}, p.stopTokenIds());
  }

  @Test
  void textAndIdsPassThrough() {
    PromptResolver r = new PromptResolver(starCoder);

    assertArrayEquals(DEF_PRINT_HELLO, r.resolve(new PromptSpec.Text("def print_hello")).ids());
    assertArrayEquals(
        new int[] {5, 6, 7}, r.resolve(new PromptSpec.Ids(new int[] {5, 6, 7})).ids());
  }
}
