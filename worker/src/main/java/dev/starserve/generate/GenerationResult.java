package dev.starserve.generate;

import dev.starserve.engine.FinishReason;
import java.util.List;

/** What a finished generation produced. */
public record GenerationResult(
    int promptTokens, List<GeneratedToken> tokens, String text, FinishReason finishReason) {
  public GenerationResult {
    tokens = List.copyOf(tokens);
  }
}
