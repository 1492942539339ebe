package dev.starserve.prompt;

import dev.starserve.text.Tokenizer;
import java.util.List;

/** Turns any {@link PromptSpec} into token ids with the model's own tokenizer and formats. */
public final class PromptResolver {
  private final Tokenizer tokenizer;
  private final FimPromptBuilder fim;
  private final ChatPromptBuilder chat;

  public PromptResolver(Tokenizer tokenizer) {
    this.tokenizer = tokenizer;
    this.fim = FimPromptBuilder.forTokenizer(tokenizer);
    this.chat = ChatPromptBuilder.forTokenizer(tokenizer);
  }

  /**
   * @throws IllegalArgumentException when the model cannot take this form (no FIM tokens) or the
   *     chat messages are invalid
   */
  public ResolvedPrompt resolve(PromptSpec spec) {
    return switch (spec) {
      case PromptSpec.Text t ->
          new ResolvedPrompt(tokenizer.encode(t.text()), new int[0], List.of());
      case PromptSpec.Ids i -> new ResolvedPrompt(i.ids(), new int[0], List.of());
      case PromptSpec.FillInTheMiddle f ->
          new ResolvedPrompt(fim.build(f.prefix(), f.suffix()), new int[0], List.of());
      case PromptSpec.Chat c ->
          new ResolvedPrompt(
              tokenizer.encode(chat.render(c.messages(), true)),
              chat.stopTokenIds(),
              chat.stopSequences());
    };
  }
}
