package dev.starserve.bench.serve;

/**
 * One generation a client sends: greedy, streaming, asking for exactly {@code maxNewTokens} new
 * tokens where the API can say so.
 *
 * @param model the model id to name, or null for the API's default
 */
public record BenchRequest(int index, String prompt, int maxNewTokens, String model) {
  public BenchRequest {
    if (prompt == null || prompt.isEmpty()) {
      throw new IllegalArgumentException("prompt must not be empty");
    }
    if (maxNewTokens < 1) {
      throw new IllegalArgumentException("maxNewTokens must be at least 1, got " + maxNewTokens);
    }
  }
}
