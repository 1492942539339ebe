package dev.starserve.engine;

import dev.starserve.generate.GeneratedToken;
import java.util.List;

/**
 * One generated token of one sample. {@code text} is what the client may show now: it can be empty
 * while text is held back (a possible stop sequence, an incomplete UTF-8 character) and can carry
 * held-back text of earlier tokens; the concatenation over a sample's events is its output.
 *
 * @param index the token's position among the sample's generated tokens, from 0
 * @param logprob natural-log softmax of the model's raw logits for this token
 * @param topLogprobs the most likely alternatives, best first (as many as requested)
 */
public record TokenEvent(
    String requestId,
    int sampleIndex,
    int index,
    int tokenId,
    String text,
    double logprob,
    List<GeneratedToken.TopLogprob> topLogprobs) {
  public TokenEvent {
    topLogprobs = List.copyOf(topLogprobs);
  }
}
