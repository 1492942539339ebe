package dev.starserve.prompt;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A {@code chat_template} from tokenizer_config.json, rendered with Jinjava configured to behave as
 * HF's {@code apply_chat_template} (jinja2 with {@code trim_blocks=True, lstrip_blocks=True},
 * {@code keep_trailing_newline=False}). The template sees {@code messages} (maps with {@code role}
 * and {@code content}), {@code add_generation_prompt}, {@code bos_token}, {@code eos_token} and
 * {@code raise_exception(message)}, which rejects the conversation.
 *
 * <p>Known differences from jinja2, none of which the StarChat or ChatML templates of this model
 * family meet: {@code not a == b} and {@code not a in b} parse as {@code (not a) == b} (write
 * {@code a != b} or {@code not (a == b)}); {@code {{ true }}} and {@code none} print {@code true}
 * and an empty string (Python: {@code True}, {@code None}); strings cannot be indexed or repeated
 * with {@code *}; {@code 'a' + 1} is {@code a1}, not an error; HF's {@code strftime_now} and
 * generation-tracking tags are absent.
 *
 * <p>Thread-safe: Jinjava makes a fresh interpreter for each render.
 */
final class JinjaChatTemplate implements ChatFormat {
  private final String template;
  private final String bosToken; // null: undefined in the template, as in HF
  private final String eosToken;
  private final Jinjava jinjava;

  JinjaChatTemplate(String template, String bosToken, String eosToken) {
    this.template = jinja2Source(template);
    this.bosToken = bosToken;
    this.eosToken = eosToken;
    JinjavaConfig config =
        JinjavaConfig.newBuilder()
            .withTrimBlocks(true)
            .withLstripBlocks(true)
            // NOTE: Jinjava by default renders template syntax found in a rendered value again;
            // message content is the client's text and must come out as written.
            .withNestedInterpretationEnabled(false)
            .withLegacyOverrides(
                LegacyOverrides.newBuilder()
                    // Each brings Jinjava to jinja2's result on a case in JinjaChatTemplateTest.
                    .withUseTrimmingForNotesAndExpressions(true) // {{- x -}}, {#- c -#}
                    .withParseWhitespaceControlStrictly(true) // {{ -1 }} is -1, not 1
                    .withIterateOverMapKeys(true) // for k in dict: the keys
                    .withEvaluateMapKeys(true) // {x: 1}: the key is the value of x
                    .withUsePyishObjectMapper(true) // {'a': 1}, not {a=1}
                    .build())
            .build();
    this.jinjava = new Jinjava(config);
    jinjava
        .getGlobalContext()
        .registerFunction(
            new ELFunctionDefinition(
                "", "raise_exception", JinjaChatTemplate.class, "raiseException", String.class));
  }

  /**
   * The source as jinja2's lexer reads it: newlines normalized to {@code \n} and, with {@code
   * keep_trailing_newline=False}, one trailing newline dropped.
   */
  static String jinja2Source(String template) {
    String s = template.replace("\r\n", "\n").replace('\r', '\n');
    return s.endsWith("\n") ? s.substring(0, s.length() - 1) : s;
  }

  /**
   * @throws IllegalArgumentException when the template calls {@code raise_exception}
   * @throws IllegalStateException when the template cannot be rendered (a defect of the model)
   */
  @Override
  public String render(List<ChatMessage> messages, boolean addGenerationPrompt) {
    List<Map<String, Object>> list = new ArrayList<>(messages.size());
    for (ChatMessage m : messages) {
      Map<String, Object> map = new LinkedHashMap<>();
      map.put("role", m.role());
      map.put("content", m.content());
      list.add(map);
    }
    Map<String, Object> bindings = new HashMap<>();
    bindings.put("messages", list);
    bindings.put("add_generation_prompt", addGenerationPrompt);
    if (bosToken != null) {
      bindings.put("bos_token", bosToken);
    }
    if (eosToken != null) {
      bindings.put("eos_token", eosToken);
    }
    RenderResult result = jinjava.renderForResult(template, bindings);
    for (TemplateError e : result.getErrors()) {
      if (e.getSeverity() != TemplateError.ErrorType.FATAL) {
        continue; // warnings, such as an unknown property, render as undefined, as in jinja2
      }
      for (Throwable t = e.getException(); t != null; t = t.getCause()) {
        if (t instanceof TemplateRaised raised) {
          throw new IllegalArgumentException(
              "messages rejected by the model's chat template: " + raised.getMessage());
        }
      }
      throw new IllegalStateException(
          "the model's chat_template cannot be rendered: "
              + e.getMessage()
              + " (line "
              + e.getLineno()
              + ")");
    }
    return result.getOutput();
  }

  /** The template's {@code raise_exception}: HF makes it a {@code TemplateError}. */
  public static String raiseException(String message) {
    throw new TemplateRaised(message);
  }

  private static final class TemplateRaised extends RuntimeException {
    private static final long serialVersionUID = 1L;

    TemplateRaised(String message) {
      super(message, null, false, false);
    }
  }
}
