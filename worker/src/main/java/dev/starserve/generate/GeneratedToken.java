package dev.starserve.generate;

import java.util.List;

/**
 * One generated token: its id, the text it added to the output, its log-probability under the
 * model's raw logits (natural log softmax), and the most likely alternatives, best first.
 */
public record GeneratedToken(int id, String text, double logprob, List<TopLogprob> topLogprobs) {
  public GeneratedToken {
    topLogprobs = List.copyOf(topLogprobs);
  }

  /** An alternative token and its log-probability. */
  public record TopLogprob(int id, double logprob) {}
}
