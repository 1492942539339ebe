package dev.starserve.gateway.metrics;

import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.Gauge;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.instrumentation.jvm.JvmMetrics;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;

/**
 * The gateway's Prometheus metrics, in a registry of their own (so tests and several gateways in
 * one JVM do not collide). The API adapters record requests through {@link #startRequest}; the
 * router calls {@link #retry}, {@link #failover}, {@link #queueDepth} and {@link #workers}.
 */
public final class GatewayMetrics {
  /** Outcomes of a request, the {@code outcome} label. */
  public enum Outcome {
    SUCCESS("success"),
    CANCELLED("cancelled"),
    INVALID("invalid"),
    UNAUTHENTICATED("unauthenticated"),
    NOT_FOUND("not_found"),
    OVERLOADED("overloaded"),
    UNAVAILABLE("unavailable"),
    ERROR("error"),
    TIMEOUT("timeout");

    private final String label;

    Outcome(String label) {
      this.label = label;
    }

    public String label() {
      return label;
    }
  }

  private final PrometheusRegistry registry = new PrometheusRegistry();
  private final PrometheusTextFormatWriter writer = PrometheusTextFormatWriter.create();
  private final Counter requests;
  private final Histogram requestDuration;
  private final Histogram timeToFirstToken;
  private final Histogram timePerOutputToken;
  private final Counter promptTokens;
  private final Counter generatedTokens;
  private final Counter retries;
  private final Counter failovers;
  private final Gauge queueDepth;
  private final Gauge workers;
  private final Gauge inFlight;

  public GatewayMetrics() {
    this(true);
  }

  /**
   * @param jvm whether to add the JVM metrics (memory, GC, threads, ...) to this registry
   */
  public GatewayMetrics(boolean jvm) {
    requests =
        Counter.builder()
            .name("starserve_gateway_requests_total")
            .help("Requests by public API, model and outcome")
            .labelNames("api", "model", "outcome")
            .register(registry);
    requestDuration =
        Histogram.builder()
            .name("starserve_gateway_request_duration_seconds")
            .help("Time from request to the last byte of the answer")
            .labelNames("api", "model")
            .classicOnly()
            .classicUpperBounds(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
            .register(registry);
    timeToFirstToken =
        Histogram.builder()
            .name("starserve_gateway_time_to_first_token_seconds")
            .help("Time from request to the first generated token")
            .labelNames("api", "model")
            .classicOnly()
            .classicUpperBounds(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
            .register(registry);
    timePerOutputToken =
        Histogram.builder()
            .name("starserve_gateway_time_per_output_token_seconds")
            .help("Mean time between generated tokens after the first, per sequence")
            .labelNames("api", "model")
            .classicOnly()
            .classicUpperBounds(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)
            .register(registry);
    promptTokens =
        Counter.builder()
            .name("starserve_gateway_prompt_tokens_total")
            .help("Prompt tokens of finished sequences")
            .labelNames("api", "model")
            .register(registry);
    generatedTokens =
        Counter.builder()
            .name("starserve_gateway_generated_tokens_total")
            .help("Generated tokens of finished sequences")
            .labelNames("api", "model")
            .register(registry);
    retries =
        Counter.builder()
            .name("starserve_gateway_retries_total")
            .help("Sequences resubmitted to another worker before their first token")
            .labelNames("model")
            .register(registry);
    failovers =
        Counter.builder()
            .name("starserve_gateway_failovers_total")
            .help("Sequences resumed on another worker after their worker failed mid-stream")
            .labelNames("model")
            .register(registry);
    queueDepth =
        Gauge.builder()
            .name("starserve_gateway_queue_depth")
            .help("Sequences waiting at the gateway for a worker, per model")
            .labelNames("model")
            .register(registry);
    workers =
        Gauge.builder()
            .name("starserve_gateway_workers")
            .help("Workers in the registry by state")
            .labelNames("state")
            .register(registry);
    inFlight =
        Gauge.builder()
            .name("starserve_gateway_in_flight_sequences")
            .help("Sequences admitted and not finished, per model")
            .labelNames("model")
            .register(registry);
    if (jvm) {
      JvmMetrics.builder().register(registry);
    }
  }

  /** Starts timing one public request; call exactly one {@code end} method on the result. */
  public RequestTimer startRequest(String api, String model) {
    return new RequestTimer(this, api, model, System.nanoTime());
  }

  /** The router resubmitted a sequence before its first token. */
  public void retry(String model) {
    retries.labelValues(model).inc();
  }

  /** The router resumed a sequence on another worker mid-stream. */
  public void failover(String model) {
    failovers.labelValues(model).inc();
  }

  /** Sequences waiting at the gateway for the model (set at the router's loop boundaries). */
  public void queueDepth(String model, int depth) {
    queueDepth.labelValues(model).set(depth);
  }

  /** Workers in the registry in a state ({@code READY}, {@code DRAINING}, ...). */
  public void workers(String state, int count) {
    workers.labelValues(state).set(count);
  }

  /** Admitted sequences of a model (set by admission control). */
  public void inFlight(String model, int count) {
    inFlight.labelValues(model).set(count);
  }

  public PrometheusRegistry registry() {
    return registry;
  }

  public String contentType() {
    return writer.getContentType();
  }

  /** The Prometheus text exposition of every metric in this registry. */
  public byte[] scrape() {
    ByteArrayOutputStream out = new ByteArrayOutputStream(16 << 10);
    try {
      writer.write(out, registry.scrape());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return out.toByteArray();
  }

  void record(
      String api,
      String model,
      Outcome outcome,
      double seconds,
      double firstTokenSeconds,
      double perTokenSeconds,
      long prompt,
      long generated) {
    requests.labelValues(api, model, outcome.label()).inc();
    requestDuration.labelValues(api, model).observe(seconds);
    if (firstTokenSeconds >= 0) {
      timeToFirstToken.labelValues(api, model).observe(firstTokenSeconds);
    }
    if (perTokenSeconds >= 0) {
      timePerOutputToken.labelValues(api, model).observe(perTokenSeconds);
    }
    if (prompt > 0) {
      promptTokens.labelValues(api, model).inc(prompt);
    }
    if (generated > 0) {
      generatedTokens.labelValues(api, model).inc(generated);
    }
  }
}
