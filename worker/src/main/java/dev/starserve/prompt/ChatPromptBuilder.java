package dev.starserve.prompt;

import dev.starserve.text.Tokenizer;
import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;

/**
 * Turns a chat conversation into the prompt text a model was trained on, and says how the model
 * ends its turn. The format is chosen from the tokenizer, in this order:
 *
 * <ol>
 *   <li>{@link Format#CHAT_TEMPLATE}: tokenizer_config.json has a {@code chat_template}; it is
 *       rendered as HF's {@code apply_chat_template} would.
 *   <li>{@link Format#STARCHAT}: the tokenizer has {@code <|system|>}, {@code <|user|>}, {@code
 *       <|assistant|>} and {@code <|end|>}; see {@link StarChatFormat}.
 *   <li>{@link Format#TECH_ASSISTANT}: otherwise (base StarCoder); see {@link TechAssistantFormat}.
 * </ol>
 *
 * <p>The rendered text is meant for {@link Tokenizer#encode}, which turns the special-token text in
 * it into the special ids. Immutable and thread-safe.
 */
public final class ChatPromptBuilder {
  /** Which chat format a model gets. */
  public enum Format {
    CHAT_TEMPLATE,
    STARCHAT,
    TECH_ASSISTANT
  }

  private final Format format;
  private final ChatFormat renderer;
  private final int[] stopTokenIds;
  private final List<String> stopSequences;

  private ChatPromptBuilder(
      Format format, ChatFormat renderer, int[] stopTokenIds, List<String> stopSequences) {
    this.format = format;
    this.renderer = renderer;
    this.stopTokenIds = stopTokenIds;
    this.stopSequences = stopSequences;
  }

  public static ChatPromptBuilder forTokenizer(Tokenizer tokenizer) {
    int end = tokenizer.tokenId(StarChatFormat.END);
    if (tokenizer.chatTemplate() != null) {
      // NOTE: a template ends each turn with eos_token, which need not be the model's EOS
      // (StarChat-beta: <|end|> in tokenizer_config.json, <|endoftext|> in config.json), so it
      // is a stop token here; so is <|end|> when the model has it. A repeat of EOS is harmless.
      int eos = tokenizer.eosToken() == null ? -1 : tokenizer.tokenId(tokenizer.eosToken());
      return new ChatPromptBuilder(
          Format.CHAT_TEMPLATE,
          new JinjaChatTemplate(
              tokenizer.chatTemplate(), tokenizer.bosToken(), tokenizer.eosToken()),
          IntStream.of(eos, end).filter(id -> id >= 0).distinct().toArray(),
          List.of());
    }
    boolean starChat =
        end >= 0
            && tokenizer.tokenId(StarChatFormat.SYSTEM) >= 0
            && tokenizer.tokenId(StarChatFormat.USER) >= 0
            && tokenizer.tokenId(StarChatFormat.ASSISTANT) >= 0;
    if (starChat) {
      return new ChatPromptBuilder(
          Format.STARCHAT, new StarChatFormat(), new int[] {end}, List.of());
    }
    return new ChatPromptBuilder(
        Format.TECH_ASSISTANT,
        new TechAssistantFormat(),
        new int[0],
        TechAssistantFormat.STOP_SEQUENCES);
  }

  public Format format() {
    return format;
  }

  /**
   * The prompt text of {@code messages}; with {@code addGenerationPrompt}, it ends where the
   * assistant's next answer begins.
   *
   * @throws IllegalArgumentException for no messages, a null message, or a conversation the model's
   *     chat template rejects
   * @throws IllegalStateException when the model's chat template cannot be rendered
   */
  public String render(List<ChatMessage> messages, boolean addGenerationPrompt) {
    if (messages == null || messages.isEmpty()) {
      throw new IllegalArgumentException("messages must hold at least one message");
    }
    for (int i = 0; i < messages.size(); i++) {
      if (messages.get(i) == null) {
        throw new IllegalArgumentException("messages[" + i + "] must be a message, got null");
      }
    }
    return renderer.render(List.copyOf(messages), addGenerationPrompt);
  }

  /** Ids that end the assistant's turn besides EOS, which the engine handles (a copy). */
  public int[] stopTokenIds() {
    return stopTokenIds.clone();
  }

  /** Strings that end the assistant's turn, for a {@link dev.starserve.text.StopChecker}. */
  public List<String> stopSequences() {
    return stopSequences;
  }

  @Override
  public String toString() {
    return "ChatPromptBuilder[" + format + ", stop ids " + Arrays.toString(stopTokenIds) + "]";
  }
}
