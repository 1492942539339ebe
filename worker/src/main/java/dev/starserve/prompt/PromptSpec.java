package dev.starserve.prompt;

import java.util.List;

/** What a request gives as its prompt: exactly one of these forms. */
public sealed interface PromptSpec {
  /** Plain text, tokenized as is. */
  record Text(String text) implements PromptSpec {
    public Text {
      if (text == null || text.isEmpty()) {
        throw new IllegalArgumentException("prompt must be a non-empty string");
      }
    }
  }

  /** Token ids, used as is. */
  record Ids(int[] ids) implements PromptSpec {
    public Ids {
      if (ids == null || ids.length == 0) {
        throw new IllegalArgumentException("prompt_ids must hold at least one id");
      }
      ids = ids.clone();
    }

    @Override
    public int[] ids() {
      return ids.clone();
    }
  }

  /** Fill-in-the-middle: the model writes what goes between prefix and suffix. */
  record FillInTheMiddle(String prefix, String suffix) implements PromptSpec {
    public FillInTheMiddle {
      if (prefix == null || suffix == null) {
        throw new IllegalArgumentException("prefix and suffix must both be given");
      }
    }
  }

  /** Chat messages, rendered with the model's chat format. */
  record Chat(List<ChatMessage> messages) implements PromptSpec {
    public Chat {
      if (messages == null || messages.isEmpty()) {
        throw new IllegalArgumentException("messages must hold at least one message");
      }
      messages = List.copyOf(messages);
    }
  }
}
