package dev.starserve.prompt;

import java.util.List;

/**
 * A chat format for base StarCoder models, which have no chat tokens, in the manner of BigCode's
 * Tech Assistant prompt: a preamble that says what follows, a {@code -----} line, then the turns as
 * plain-text dialogue. The model continues the dialogue; the stop sequences {@code "\nHuman:"} and
 * {@code "\n-----"} end its answer when it starts the user's next turn or a new dialogue.
 *
 * <pre>
 * {preamble}
 *
 * -----
 *
 * Human: {user}
 *
 * Assistant: {assistant}
 *
 * Human: {user}
 *
 * Assistant:                      (the generation prompt)
 * </pre>
 *
 * <p>System messages replace the preamble (several are joined by a blank line, in order), wherever
 * they stand in the conversation.
 */
record TechAssistantFormat() implements ChatFormat {
  /** Our own short preamble; BigCode's original follows it with worked example dialogues. */
  static final String PREAMBLE =
      """
      What follows are conversations between software developers and an AI programming \
      assistant. The assistant answers questions about code, tools and computing accurately \
      and courteously. It writes clear, working code with short explanations, and it says \
      plainly when it does not know something or when a request is unclear.""";

  static final String SEPARATOR = "-----";
  static final List<String> STOP_SEQUENCES = List.of("\nHuman:", "\n" + SEPARATOR);

  @Override
  public String render(List<ChatMessage> messages, boolean addGenerationPrompt) {
    StringBuilder system = new StringBuilder();
    for (ChatMessage m : messages) {
      if (m.role().equals("system")) {
        system.append(system.isEmpty() ? "" : "\n\n").append(m.content());
      }
    }
    StringBuilder out = new StringBuilder(system.isEmpty() ? PREAMBLE : system);
    out.append("\n\n").append(SEPARATOR);
    for (ChatMessage m : messages) {
      switch (m.role()) {
        case "user" -> out.append("\n\nHuman: ").append(m.content());
        case "assistant" -> out.append("\n\nAssistant: ").append(m.content());
        default -> {} // system: in the preamble
      }
    }
    if (addGenerationPrompt) {
      out.append("\n\nAssistant:");
    }
    return out.toString();
  }
}
