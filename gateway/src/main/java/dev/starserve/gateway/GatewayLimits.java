package dev.starserve.gateway;

/**
 * Limits the gateway enforces at the edge, before a request reaches a worker. Every violation is
 * answered with a message naming the field and the allowed range.
 *
 * @param maxBodyBytes largest HTTP request body (larger: 413)
 * @param maxPromptChars longest prompt text, summed over a request's prompts or chat messages
 * @param maxPromptTokens most prompt tokens where they are known at the edge (token-id prompts)
 * @param maxNewTokens cap on max_tokens / max_new_tokens
 * @param maxN most sequences one request may ask for (OpenAI n, TGIS batch size)
 * @param maxStopSequences most stop sequences per request
 * @param maxStopSequenceChars longest stop sequence
 * @param maxTopLogprobs most alternatives per generated token
 * @param maxInFlightPerModel sequences admitted per model at once; beyond it requests get 429 /
 *     RESOURCE_EXHAUSTED
 * @param retryAfterSeconds the Retry-After hint sent with 429
 */
public record GatewayLimits(
    int maxBodyBytes,
    int maxPromptChars,
    int maxPromptTokens,
    int maxNewTokens,
    int maxN,
    int maxStopSequences,
    int maxStopSequenceChars,
    int maxTopLogprobs,
    int maxInFlightPerModel,
    int retryAfterSeconds) {

  public GatewayLimits {
    positive("maxBodyBytes", maxBodyBytes);
    positive("maxPromptChars", maxPromptChars);
    positive("maxPromptTokens", maxPromptTokens);
    positive("maxNewTokens", maxNewTokens);
    positive("maxN", maxN);
    positive("maxStopSequences", maxStopSequences);
    positive("maxStopSequenceChars", maxStopSequenceChars);
    if (maxTopLogprobs < 0 || maxTopLogprobs > 20) {
      throw new IllegalArgumentException(
          "maxTopLogprobs must be in [0, 20] (the worker's limit), got " + maxTopLogprobs);
    }
    positive("maxInFlightPerModel", maxInFlightPerModel);
    positive("retryAfterSeconds", retryAfterSeconds);
  }

  /**
   * 4 MiB bodies, 400 000 prompt characters (about 100 000 tokens of code), 8192 prompt tokens
   * (StarCoder's context), 4096 new tokens, n ≤ 16, 16 stop sequences of ≤ 256 characters, 20 top
   * logprobs, 256 sequences in flight per model, Retry-After 1 s.
   */
  public static GatewayLimits defaults() {
    return new GatewayLimits(4 << 20, 400_000, 8192, 4096, 16, 16, 256, 20, 256, 1);
  }

  public GatewayLimits withMaxInFlightPerModel(int value) {
    return new GatewayLimits(
        maxBodyBytes,
        maxPromptChars,
        maxPromptTokens,
        maxNewTokens,
        maxN,
        maxStopSequences,
        maxStopSequenceChars,
        maxTopLogprobs,
        value,
        retryAfterSeconds);
  }

  public GatewayLimits withMaxBodyBytes(int value) {
    return new GatewayLimits(
        value,
        maxPromptChars,
        maxPromptTokens,
        maxNewTokens,
        maxN,
        maxStopSequences,
        maxStopSequenceChars,
        maxTopLogprobs,
        maxInFlightPerModel,
        retryAfterSeconds);
  }

  private static void positive(String name, int value) {
    if (value < 1) {
      throw new IllegalArgumentException(name + " must be >= 1, got " + value);
    }
  }
}
