package dev.starserve.engine;

import java.util.List;

/**
 * The last event of one sample.
 *
 * @param trailingText output text that was held back until the end and is released by it (the start
 *     of a possible stop sequence, the bytes of an unfinished character) when the sample ends
 *     between tokens: by its time limit while waiting or preempted, by an abort. Usually empty: a
 *     sample that ends at a token releases it with that token's text. The sample's output is the
 *     concatenation of its token texts followed by this.
 * @param promptTokens tokens in the prompt as run (after truncation)
 * @param generatedTokens tokens generated, including a final EOS or stop token
 * @param cachedPromptTokens prompt tokens whose K/V came from the prefix cache
 * @param stopSequence the stop sequence that ended it, or null
 * @param promptLogprobs logprob of every prompt token after the first (null unless requested)
 * @param error a message when the engine failed the request, else null
 */
public record FinishEvent(
    String requestId,
    int sampleIndex,
    FinishReason reason,
    String trailingText,
    int promptTokens,
    int generatedTokens,
    int cachedPromptTokens,
    String stopSequence,
    List<PromptLogprob> promptLogprobs,
    String error) {

  /** A prompt token and its log-probability given the tokens before it. */
  public record PromptLogprob(int tokenId, double logprob) {}
}
