package dev.starserve.prompt;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Jinjava configured as HF's jinja2 environment. Every expected string here was produced by jinja2
 * 3.1.6 with HF's settings ({@code ImmutableSandboxedEnvironment(trim_blocks=True,
 * lstrip_blocks=True)}) on the same template and messages.
 */
class JinjaChatTemplateTest {
  /** HF's StarChat / Zephyr template (HuggingFaceH4), with eos_token = <|end|> for StarChat. */
  static final String STARCHAT_TEMPLATE =
      "{% for message in messages %}\n"
          + "{% if message['role'] == 'user' %}\n"
          + "{{ '<|user|>\n' + message['content'] + eos_token }}\n"
          + "{% elif message['role'] == 'system' %}\n"
          + "{{ '<|system|>\n' + message['content'] + eos_token }}\n"
          + "{% elif message['role'] == 'assistant' %}\n"
          + "{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n"
          + "{% endif %}\n"
          + "{% if loop.last and add_generation_prompt %}\n"
          + "{{ '<|assistant|>' }}\n"
          + "{% endif %}\n"
          + "{% endfor %}";

  static final List<ChatMessage> CONVERSATION =
      List.of(
          ChatMessage.system("You are helpful."),
          ChatMessage.user("Hi"),
          ChatMessage.assistant("Hello!"),
          ChatMessage.user("Write a loop"));

  private static String render(String template, boolean addGenerationPrompt) {
    return new JinjaChatTemplate(template, "<s>", "<|end|>")
        .render(CONVERSATION, addGenerationPrompt);
  }

  @Test
  void starChatTemplateRendersAsHfDoes() {
    assertEquals(
        "<|system|>\nYou are helpful.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n"
            + "<|user|>\nWrite a loop<|end|>\n<|assistant|>\n",
        render(STARCHAT_TEMPLATE, true));
    assertEquals(
        "<|system|>\nYou are helpful.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n"
            + "<|user|>\nWrite a loop<|end|>\n",
        render(STARCHAT_TEMPLATE, false));
  }

  @Test
  void blockTagsOnTheirOwnIndentedLinesLeaveNothingButExpressionsKeepTheirIndent() {
    // trim_blocks drops the newline after a block tag, lstrip_blocks the indent before it;
    // neither touches the text around {{ }}. The trailing newline of the source is dropped.
    String template =
        "{% for message in messages %}\n"
            + "    {% if message['role'] == 'user' %}\n"
            + "    {{ 'U:' + message['content'] }}\n"
            + "    {% else %}\n"
            + "  A:{{ message['content'] }}\n"
            + "    {% endif %}\n"
            + "{% endfor %}\n"
            + "{% if add_generation_prompt %}\n"
            + "A:{% endif %}\n";

    assertEquals(
        "  A:You are helpful.\n    U:Hi\n  A:Hello!\n    U:Write a loop\nA:",
        render(template, true));
    assertEquals(
        "  A:You are helpful.\n    U:Hi\n  A:Hello!\n    U:Write a loop\n",
        render(template, false));
  }

  @Test
  void minusSignsTrimWhitespaceAroundExpressionsCommentsAndBlocks() {
    String template =
        "{#- comment -#}\n  {{- bos_token -}}  \n{% for m in messages -%}\n"
            + "  [{{ m.role }}]  {{- m.content -}}\n{%- endfor %}\n{{ eos_token }}\n";

    assertEquals(
        "<s>[system]You are helpful.[user]Hi[assistant]Hello![user]Write a loop<|end|>",
        render(template, true));
  }

  @Test
  void unaryMinusDictIterationDictKeysAndPrintedContainersFollowPython() {
    String template =
        "{{ -1 }}|{% for k in {'a': 1, 'b': 2} %}{{ k }}{% endfor %}|{% set x = 'k' %}"
            + "{{ {x: 1}['k'] }}|{{ {'a': 1} }}|{{ ['x', 2] }}";

    assertEquals("-1|ab|1|{'a': 1}|['x', 2]", render(template, true));
  }

  @Test
  void sourceNewlinesAreNormalizedAndOneTrailingNewlineDropped() {
    assertEquals("a\nb", JinjaChatTemplate.jinja2Source("a\r\nb\r\n"));
    assertEquals("a\nb\n", JinjaChatTemplate.jinja2Source("a\rb\n\n"));
    assertEquals("You are helpful.", render("{{ messages[0]['content'] }}\r\n", true));
  }

  @Test
  void templateSyntaxInsideMessageContentIsPrintedNotRun() {
    JinjaChatTemplate t = new JinjaChatTemplate(STARCHAT_TEMPLATE, null, "<|end|>");
    String content = "{{ raise_exception('boom') }}{% if true %}x{% endif %}{{ eos_token }}";

    String out = t.render(List.of(ChatMessage.user(content)), false);

    assertEquals("<|user|>\n" + content + "<|end|>\n", out);
  }

  @Test
  void raiseExceptionRejectsTheConversationWithTheTemplatesMessage() {
    String template =
        "{% if messages[0]['role'] == 'system' %}"
            + "{{ raise_exception('System role not supported') }}{% endif %}ok";
    JinjaChatTemplate t = new JinjaChatTemplate(template, null, null);

    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class, () -> t.render(List.of(ChatMessage.system("s")), true));

    assertEquals(
        "messages rejected by the model's chat template: System role not supported",
        e.getMessage());
    assertEquals("ok", t.render(List.of(ChatMessage.user("u")), true));
  }

  @Test
  void brokenTemplateIsAServerProblemNotTheClients() {
    JinjaChatTemplate t =
        new JinjaChatTemplate("{% for m in messages %}{{ m.content }}", null, null);

    IllegalStateException e =
        assertThrows(
            IllegalStateException.class, () -> t.render(List.of(ChatMessage.user("u")), true));

    assertTrue(
        e.getMessage().startsWith("the model's chat_template cannot be rendered"), e.getMessage());
  }

  @Test
  void missingBosTokenIsUndefinedAndRendersEmptyAsInJinja2() {
    JinjaChatTemplate t =
        new JinjaChatTemplate("[{{ bos_token }}]{{ messages[0].content }}", null, null);

    assertEquals("[]u", t.render(List.of(ChatMessage.user("u")), true));
  }
}
