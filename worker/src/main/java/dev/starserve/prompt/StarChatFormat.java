package dev.starserve.prompt;

import java.util.List;

/**
 * StarChat's dialogue format, for a tokenizer that has the StarChat tokens but no chat_template:
 *
 * <pre>
 * &lt;|system|&gt;\n{system}&lt;|end|&gt;\n
 * &lt;|user|&gt;\n{content}&lt;|end|&gt;\n
 * &lt;|assistant|&gt;\n{content}&lt;|end|&gt;\n
 * &lt;|assistant|&gt;                        (the generation prompt)
 * </pre>
 *
 * <p>NOTE: this follows StarChat's training and model card ({@code
 * "<|system|>\n<|end|>\n<|user|>\n{query}<|end|>\n<|assistant|>"}), not the later HF chat_template,
 * in two places: every conversation opens with a system turn (empty when the messages have none),
 * and the generation prompt has no newline after {@code <|assistant|>}. In training that newline
 * was always followed by the answer and could be tokenized together with the answer's indentation;
 * leaving it to the model keeps the prompt's tokens those it was trained on. The generated text
 * therefore starts with {@code "\n"}, which a chat API may strip.
 */
record StarChatFormat() implements ChatFormat {
  static final String SYSTEM = "<|system|>";
  static final String USER = "<|user|>";
  static final String ASSISTANT = "<|assistant|>";
  static final String END = "<|end|>";

  @Override
  public String render(List<ChatMessage> messages, boolean addGenerationPrompt) {
    StringBuilder out = new StringBuilder();
    if (!messages.getFirst().role().equals("system")) {
      out.append(SYSTEM).append('\n').append(END).append('\n');
    }
    for (ChatMessage m : messages) {
      out.append("<|").append(m.role()).append("|>\n").append(m.content()).append(END).append('\n');
    }
    if (addGenerationPrompt) {
      out.append(ASSISTANT);
    }
    return out.toString();
  }
}
