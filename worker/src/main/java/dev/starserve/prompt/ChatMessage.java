package dev.starserve.prompt;

import java.util.Set;

/**
 * One turn of a chat conversation, as OpenAI's {@code /v1/chat/completions} and HF's {@code
 * apply_chat_template} take them.
 *
 * @param role {@code system}, {@code user} or {@code assistant}
 * @param content the text; may be empty, never null
 */
public record ChatMessage(String role, String content) {
  /** The roles every chat format here can render. */
  public static final Set<String> ROLES = Set.of("system", "user", "assistant");

  /**
   * @throws IllegalArgumentException naming the field and what it allows
   */
  public ChatMessage {
    if (role == null || !ROLES.contains(role)) {
      throw new IllegalArgumentException(
          "role must be one of system, user, assistant, got "
              + (role == null ? "null" : "'" + role + "'"));
    }
    if (content == null) {
      throw new IllegalArgumentException("content must be a string, got null");
    }
  }

  public static ChatMessage system(String content) {
    return new ChatMessage("system", content);
  }

  public static ChatMessage user(String content) {
    return new ChatMessage("user", content);
  }

  public static ChatMessage assistant(String content) {
    return new ChatMessage("assistant", content);
  }
}
