package dev.starserve.prompt;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.text.StopChecker;
import dev.starserve.text.Tokenizer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ChatPromptBuilderTest {
  private static final List<ChatMessage> CONVERSATION = JinjaChatTemplateTest.CONVERSATION;

  private static int[] concat(int[]... parts) {
    return Arrays.stream(parts).flatMapToInt(IntStream::of).toArray();
  }

  @Test
  void starChatTokensWithoutTemplateGiveTheStarChatFormat(@TempDir Path dir) {
    Tokenizer tok = PromptTokenizers.load(dir, PromptTokenizers.starChatJson(), null);
    ChatPromptBuilder chat = ChatPromptBuilder.forTokenizer(tok);

    assertEquals(ChatPromptBuilder.Format.STARCHAT, chat.format());
    assertEquals(
        "<|system|>\nYou are helpful.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n"
            + "<|user|>\nWrite a loop<|end|>\n<|assistant|>",
        chat.render(CONVERSATION, true));
    assertArrayEquals(new int[] {49155}, chat.stopTokenIds());
    assertEquals(List.of(), chat.stopSequences());
  }

  @Test
  void starChatFormatOpensWithAnEmptySystemTurnAsInTraining(@TempDir Path dir) {
    Tokenizer tok = PromptTokenizers.load(dir, PromptTokenizers.starChatJson(), null);

    String prompt =
        ChatPromptBuilder.forTokenizer(tok).render(List.of(ChatMessage.user("Hi")), true);

    // The StarChat model card's prompt:
    // "<|system|>\n<|end|>\n<|user|>\n{query}<|end|>\n<|assistant|>"
    assertEquals("<|system|>\n<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>", prompt);
    assertEquals(
        "<|system|>\n<|end|>\n<|user|>\nHi<|end|>\n",
        ChatPromptBuilder.forTokenizer(tok).render(List.of(ChatMessage.user("Hi")), false));
  }

  @Test
  void renderedStarChatPromptEncodesToTheSpecialIds(@TempDir Path dir) {
    Tokenizer tok = PromptTokenizers.load(dir, PromptTokenizers.starChatJson(), null);
    String prompt =
        ChatPromptBuilder.forTokenizer(tok).render(List.of(ChatMessage.user("Hi")), true);

    int[] ids = tok.encode(prompt);

    int nl = tok.encode("\n")[0];
    assertArrayEquals(
        concat(
            new int[] {49152, nl, 49155, nl, 49153},
            tok.encode("\nHi"),
            new int[] {49155, nl, 49154}),
        ids);
    assertEquals(prompt, tok.decode(ids, false));
  }

  @Test
  void plainStarCoderGetsTheTechAssistantFormat() {
    ChatPromptBuilder chat = ChatPromptBuilder.forTokenizer(Tokenizer.starCoder());
    List<ChatMessage> messages =
        List.of(
            ChatMessage.user("How do I reverse a list in Python?"),
            ChatMessage.assistant("Use `xs[::-1]` or `xs.reverse()`."),
            ChatMessage.user("Which one copies?"));

    String prompt = chat.render(messages, true);

    assertEquals(ChatPromptBuilder.Format.TECH_ASSISTANT, chat.format());
    assertEquals(
        TechAssistantFormat.PREAMBLE
            + "\n\n-----\n\n"
            + "Human: How do I reverse a list in Python?\n\n"
            + "Assistant: Use `xs[::-1]` or `xs.reverse()`.\n\n"
            + "Human: Which one copies?\n\n"
            + "Assistant:",
        prompt);
    assertTrue(TechAssistantFormat.PREAMBLE.startsWith("What follows are conversations"));
    assertArrayEquals(new int[0], chat.stopTokenIds());
    assertEquals(List.of("\nHuman:", "\n-----"), chat.stopSequences());
    assertEquals(
        prompt.substring(0, prompt.length() - "\n\nAssistant:".length()),
        chat.render(messages, false));
  }

  @Test
  void techAssistantSystemMessagesReplaceThePreamble() {
    ChatPromptBuilder chat = ChatPromptBuilder.forTokenizer(Tokenizer.starCoder());

    String prompt =
        chat.render(
            List.of(
                ChatMessage.system("You review Java code."),
                ChatMessage.user("Is this thread-safe?"),
                ChatMessage.system("Answer in one line.")),
            true);

    assertEquals(
        "You review Java code.\n\nAnswer in one line.\n\n-----\n\n"
            + "Human: Is this thread-safe?\n\nAssistant:",
        prompt);
  }

  @Test
  void techAssistantStopSequencesCutTheModelsNextHumanTurn() {
    ChatPromptBuilder chat = ChatPromptBuilder.forTokenizer(Tokenizer.starCoder());
    StopChecker checker = new StopChecker(chat.stopSequences(), false);
    List<String> shown = new ArrayList<>();

    for (String piece : List.of(" Use", " sorted", "().", "\n", "\nHuman", ":", " thanks")) {
      shown.add(checker.append(piece));
      if (checker.stopped()) {
        break;
      }
    }

    assertEquals(" Use sorted().\n", String.join("", shown));
    assertEquals("\nHuman:", checker.matchedStopSequence());
  }

  @Test
  void chatTemplateInTokenizerConfigIsUsedWhenPresent(@TempDir Path dir) {
    Tokenizer tok =
        PromptTokenizers.load(
            dir,
            PromptTokenizers.starChatJson(),
            PromptTokenizers.config(
                JinjaChatTemplateTest.STARCHAT_TEMPLATE, "<|endoftext|>", "<|end|>"));
    ChatPromptBuilder chat = ChatPromptBuilder.forTokenizer(tok);

    assertEquals(ChatPromptBuilder.Format.CHAT_TEMPLATE, chat.format());
    // The HF template, unlike the built-in StarChat format: no empty system turn, and a newline
    // after the generation prompt.
    assertEquals(
        "<|user|>\nHi<|end|>\n<|assistant|>\n", chat.render(List.of(ChatMessage.user("Hi")), true));
    assertArrayEquals(new int[] {49155}, chat.stopTokenIds());
    assertEquals(List.of(), chat.stopSequences());
  }

  @Test
  void chatTemplateOnPlainStarCoderStopsOnItsEosTokenOnly(@TempDir Path dir) {
    Tokenizer tok =
        PromptTokenizers.load(
            dir,
            PromptTokenizers.starCoderJson(),
            PromptTokenizers.config(
                "{% for m in messages %}{{ m.content + eos_token }}{% endfor %}",
                null, "<|endoftext|>"));
    ChatPromptBuilder chat = ChatPromptBuilder.forTokenizer(tok);

    assertEquals(ChatPromptBuilder.Format.CHAT_TEMPLATE, chat.format());
    assertEquals("a<|endoftext|>", chat.render(List.of(ChatMessage.user("a")), true));
    assertArrayEquals(new int[] {0}, chat.stopTokenIds());
  }

  @Test
  void emptyOrNullMessagesAreRejected() {
    ChatPromptBuilder chat = ChatPromptBuilder.forTokenizer(Tokenizer.starCoder());

    assertEquals(
        "messages must hold at least one message",
        assertThrows(IllegalArgumentException.class, () -> chat.render(List.of(), true))
            .getMessage());
    assertEquals(
        "messages must hold at least one message",
        assertThrows(IllegalArgumentException.class, () -> chat.render(null, true)).getMessage());
    List<ChatMessage> withNull = new ArrayList<>();
    withNull.add(ChatMessage.user("a"));
    withNull.add(null);
    assertEquals(
        "messages[1] must be a message, got null",
        assertThrows(IllegalArgumentException.class, () -> chat.render(withNull, true))
            .getMessage());
  }

  @Test
  void badRolesAndNullContentAreRejectedByName() {
    assertEquals(
        "role must be one of system, user, assistant, got 'tool'",
        assertThrows(IllegalArgumentException.class, () -> new ChatMessage("tool", "x"))
            .getMessage());
    assertEquals(
        "role must be one of system, user, assistant, got 'User'",
        assertThrows(IllegalArgumentException.class, () -> new ChatMessage("User", "x"))
            .getMessage());
    assertEquals(
        "role must be one of system, user, assistant, got null",
        assertThrows(IllegalArgumentException.class, () -> new ChatMessage(null, "x"))
            .getMessage());
    assertEquals(
        "content must be a string, got null",
        assertThrows(IllegalArgumentException.class, () -> new ChatMessage("user", null))
            .getMessage());
    assertEquals("", new ChatMessage("assistant", "").content());
  }
}
