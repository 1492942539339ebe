package dev.starserve.bench.serve;

import java.time.Duration;

/**
 * One {@code bench serve} run, validated here with messages that name the command-line flag.
 *
 * @param concurrency requests in flight at most (closed loop: exactly, while work remains)
 * @param requests requests to send in all
 * @param rate open loop: Poisson arrivals at this many requests per second; 0 for a closed loop
 * @param promptLen words per synthetic prompt (one StarCoder token each, see {@link PromptSource})
 * @param genLen new tokens asked of every request
 * @param model the model id to ask for; null: the API's default (OpenAI: the first listed)
 * @param apiKey sent as {@code authorization: Bearer KEY}; null for none
 * @param durationLimit stop after this long, cancelling what is in flight; null for no limit
 * @param requestTimeout a request still open this long after it was sent is cancelled and counted
 *     as a timeout
 * @param seed makes the prompts reproducible
 */
public record ServeBenchConfig(
    Api api,
    Target target,
    int concurrency,
    int requests,
    double rate,
    int promptLen,
    int genLen,
    String model,
    String apiKey,
    Duration durationLimit,
    Duration requestTimeout,
    long seed) {
  /** Beyond this many connections the client, not the server, is what gets measured. */
  public static final int MAX_CONCURRENCY = 10_000;

  public static final int MAX_PROMPT_LEN = 1_000_000;
  public static final int MAX_GEN_LEN = 1_000_000;

  public ServeBenchConfig {
    if (api == null) {
      throw new IllegalArgumentException("--api is required");
    }
    if (target == null) {
      throw new IllegalArgumentException("--target is required");
    }
    range("--concurrency", concurrency, 1, MAX_CONCURRENCY);
    range("--requests", requests, 1, Integer.MAX_VALUE);
    if (!(rate >= 0) || Double.isInfinite(rate)) {
      throw new IllegalArgumentException(
          "--rate must be a positive number of requests per second, got " + rate);
    }
    range("--prompt-len", promptLen, 1, MAX_PROMPT_LEN);
    range("--gen-len", genLen, 1, MAX_GEN_LEN);
    if (model != null && model.isBlank()) {
      throw new IllegalArgumentException("--model must not be blank");
    }
    if (apiKey != null
        && (apiKey.isBlank() || apiKey.chars().anyMatch(c -> c < 0x21 || c > 0x7e))) {
      throw new IllegalArgumentException(
          "--api-key must be printable ASCII without spaces (it goes into a header)");
    }
    if (durationLimit != null && !durationLimit.isPositive()) {
      throw new IllegalArgumentException(
          "--duration-limit must be a positive number of seconds, got "
              + durationLimit.toMillis() / 1000.0);
    }
    if (requestTimeout == null || !requestTimeout.isPositive()) {
      throw new IllegalArgumentException(
          "--request-timeout must be a positive number of seconds, got "
              + (requestTimeout == null ? "nothing" : requestTimeout.toMillis() / 1000.0));
    }
  }

  /** True for Poisson arrivals at {@link #rate}, false for a closed loop. */
  public boolean openLoop() {
    return rate > 0;
  }

  /**
   * Seconds as the flags give them (e.g. {@code 2.5}) as a duration; the message names the flag.
   */
  public static Duration seconds(String flag, double seconds) {
    if (!(seconds > 0) || seconds > 1e9) {
      throw new IllegalArgumentException(
          flag + " must be a positive number of seconds, got " + seconds);
    }
    return Duration.ofNanos(Math.max(1, Math.round(seconds * 1e9)));
  }

  private static void range(String flag, long value, long min, long max) {
    if (value < min || value > max) {
      throw new IllegalArgumentException(
          flag
              + (max == Integer.MAX_VALUE
                  ? " must be at least " + min
                  : " must be in [" + min + ", " + max + "]")
              + ", got "
              + value);
    }
  }
}
