package dev.starserve.bench.serve;

import java.util.Arrays;

/**
 * The timings of the requests that completed: time to first token, time per output token and
 * end-to-end latency, in milliseconds, plus the token counts the server reported. Used from one
 * thread (the bench's event loop).
 */
public final class LatencyRecorder {
  private double[] ttft = new double[64];
  private double[] tpot = new double[64];
  private double[] e2e = new double[64];
  private int n;
  private int tpotCount;
  private long promptTokens;
  private long outputTokens;
  private int shortRequests;

  /**
   * Records one completed request. TPOT is {@code (e2e − ttft) / (outputTokens − 1)}: the mean gap
   * between its tokens after the first, so only requests with two tokens or more have one.
   *
   * @param expectedTokens the generation length asked for; fewer tokens count as a short request
   */
  public void record(
      long ttftNanos, long e2eNanos, int promptTokens, int outputTokens, int expectedTokens) {
    if (n == ttft.length) {
      ttft = Arrays.copyOf(ttft, n * 2);
      e2e = Arrays.copyOf(e2e, n * 2);
    }
    if (tpotCount == tpot.length) {
      tpot = Arrays.copyOf(tpot, tpotCount * 2);
    }
    ttft[n] = ttftNanos / 1e6;
    e2e[n] = e2eNanos / 1e6;
    n++;
    if (outputTokens > 1) {
      tpot[tpotCount++] = (e2eNanos - ttftNanos) / 1e6 / (outputTokens - 1);
    }
    this.promptTokens += promptTokens;
    this.outputTokens += outputTokens;
    if (outputTokens < expectedTokens) {
      shortRequests++;
    }
  }

  public int count() {
    return n;
  }

  public long promptTokens() {
    return promptTokens;
  }

  public long outputTokens() {
    return outputTokens;
  }

  /** Completed requests that got fewer tokens than asked for (ended at end-of-sequence). */
  public int shortRequests() {
    return shortRequests;
  }

  public Summary ttftMillis() {
    return Summary.of(Arrays.copyOf(ttft, n));
  }

  public Summary tpotMillis() {
    return Summary.of(Arrays.copyOf(tpot, tpotCount));
  }

  public Summary e2eMillis() {
    return Summary.of(Arrays.copyOf(e2e, n));
  }
}
