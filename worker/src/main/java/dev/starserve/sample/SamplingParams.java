package dev.starserve.sample;

/**
 * How one request chooses its next token. Validated here with messages that name the field and the
 * allowed range.
 *
 * @param temperature 0 means greedy (argmax); otherwise in (0, 100]
 * @param topK keep the k most likely tokens (ties at the k-th kept), 0 = off
 * @param topP nucleus mass in (0, 1], 1 = off
 * @param typicalP locally typical mass in (0, 1], 1 = off
 * @param minP drop tokens below minP × the top probability, [0, 1], 0 = off
 * @param repetitionPenalty HF's penalty over prompt and generated tokens, in (0, 100], 1 = off
 * @param presencePenalty OpenAI's, over generated tokens, in [-2, 2], 0 = off
 * @param frequencyPenalty OpenAI's, over generated tokens, in [-2, 2], 0 = off
 * @param seed the request's random seed
 */
public record SamplingParams(
    double temperature,
    int topK,
    double topP,
    double typicalP,
    double minP,
    double repetitionPenalty,
    double presencePenalty,
    double frequencyPenalty,
    long seed) {

  public SamplingParams {
    if (!(temperature >= 0 && temperature <= 100)) {
      throw new IllegalArgumentException(
          "temperature must be in [0, 100] (0 = greedy), got " + temperature);
    }
    if (topK < 0) {
      throw new IllegalArgumentException("top_k must be >= 0 (0 = off), got " + topK);
    }
    if (!(topP > 0 && topP <= 1)) {
      throw new IllegalArgumentException("top_p must be in (0, 1], got " + topP);
    }
    if (!(typicalP > 0 && typicalP <= 1)) {
      throw new IllegalArgumentException("typical_p must be in (0, 1], got " + typicalP);
    }
    if (!(minP >= 0 && minP <= 1)) {
      throw new IllegalArgumentException("min_p must be in [0, 1], got " + minP);
    }
    if (!(repetitionPenalty > 0 && repetitionPenalty <= 100)) {
      throw new IllegalArgumentException(
          "repetition_penalty must be in (0, 100], got " + repetitionPenalty);
    }
    if (!(presencePenalty >= -2 && presencePenalty <= 2)) {
      throw new IllegalArgumentException(
          "presence_penalty must be in [-2, 2], got " + presencePenalty);
    }
    if (!(frequencyPenalty >= -2 && frequencyPenalty <= 2)) {
      throw new IllegalArgumentException(
          "frequency_penalty must be in [-2, 2], got " + frequencyPenalty);
    }
  }

  /** Argmax, no penalties. */
  public static SamplingParams greedy() {
    return new SamplingParams(0, 0, 1, 1, 0, 1, 0, 0, 0);
  }

  public boolean isGreedy() {
    return temperature == 0;
  }

  /** The same parameters with another seed (sample i of n uses seed + i). */
  public SamplingParams withSeed(long newSeed) {
    return new SamplingParams(
        temperature,
        topK,
        topP,
        typicalP,
        minP,
        repetitionPenalty,
        presencePenalty,
        frequencyPenalty,
        newSeed);
  }
}
