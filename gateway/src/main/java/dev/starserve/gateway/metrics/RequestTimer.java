package dev.starserve.gateway.metrics;

import dev.starserve.gateway.metrics.GatewayMetrics.Outcome;

/**
 * One public request's timings and token counts, reported once by {@link #end}. Used on the
 * request's Vert.x context only.
 */
public final class RequestTimer {
  private final GatewayMetrics metrics;
  private final String api;
  private String model;
  private final long startNanos;
  private long firstTokenNanos = -1;
  private long lastTokenNanos = -1;
  private long promptTokens;
  private long generatedTokens;
  private boolean ended;

  RequestTimer(GatewayMetrics metrics, String api, String model, long startNanos) {
    this.metrics = metrics;
    this.api = api;
    this.model = model;
    this.startNanos = startNanos;
  }

  /** The model once it is known (requests are timed from before their body is parsed). */
  public void model(String model) {
    this.model = model;
  }

  /** Tokens arrived for some sequence of the request. */
  public void tokens(int count) {
    if (count <= 0) {
      return;
    }
    long now = System.nanoTime();
    if (firstTokenNanos < 0) {
      firstTokenNanos = now;
    }
    lastTokenNanos = now;
  }

  /** A sequence finished with these counts. */
  public void finished(long prompt, long generated) {
    promptTokens += prompt;
    generatedTokens += generated;
  }

  public void end(Outcome outcome) {
    if (ended) {
      return;
    }
    ended = true;
    long now = System.nanoTime();
    double ttft = firstTokenNanos < 0 ? -1 : (firstTokenNanos - startNanos) / 1e9;
    double tpot =
        generatedTokens > 1 && lastTokenNanos > firstTokenNanos
            ? (lastTokenNanos - firstTokenNanos) / 1e9 / (generatedTokens - 1)
            : -1;
    metrics.record(
        api, model, outcome, (now - startNanos) / 1e9, ttft, tpot, promptTokens, generatedTokens);
  }
}
