package dev.starserve.prompt;

import java.util.List;

/** One way of turning a conversation into prompt text; messages are already validated. */
sealed interface ChatFormat permits JinjaChatTemplate, StarChatFormat, TechAssistantFormat {
  String render(List<ChatMessage> messages, boolean addGenerationPrompt);
}
