package dev.starserve.worker.metrics;

import dev.starserve.engine.Engine;
import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.CounterWithCallback;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.instrumentation.jvm.JvmMetrics;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;

/**
 * The worker's Prometheus metrics, in a registry of its own (several workers may share a JVM in
 * tests and in {@code serve}). Gauges and totals read the stats the engine publishes at every loop
 * boundary when scraped; the two per-step histograms are fed by the engine's step listener.
 */
public final class WorkerMetrics {
  /** Content type of {@link #scrape()}. */
  public static final String CONTENT_TYPE = PrometheusTextFormatWriter.CONTENT_TYPE;

  private final PrometheusRegistry registry = new PrometheusRegistry();
  private final Histogram batchTokens;
  private final Histogram stepDuration;
  private final Counter requests;
  private final PrometheusTextFormatWriter writer = PrometheusTextFormatWriter.create();

  /**
   * @param jvm also export the JVM's metrics (memory, GC, threads); one registry per process should
   */
  public WorkerMetrics(Engine engine, boolean jvm) {
    GaugeWithCallback.builder()
        .name("starserve_worker_running_sequences")
        .help("sequences the engine is running")
        .callback(cb -> cb.call(engine.stats().running()))
        .register(registry);
    GaugeWithCallback.builder()
        .name("starserve_worker_waiting_sequences")
        .help("sequences waiting to run (new or preempted)")
        .callback(cb -> cb.call(engine.stats().waiting()))
        .register(registry);
    CounterWithCallback.builder()
        .name("starserve_worker_preemptions_total")
        .help("running sequences preempted to free KV blocks")
        .callback(cb -> cb.call(engine.stats().preemptionsTotal()))
        .register(registry);
    GaugeWithCallback.builder()
        .name("starserve_worker_kv_blocks_used")
        .help("KV cache blocks held by sequences")
        .callback(cb -> cb.call(engine.stats().kvBlocksUsed()))
        .register(registry);
    int totalBlocks = engine.config().numBlocks();
    GaugeWithCallback.builder()
        .name("starserve_worker_kv_blocks_total")
        .help("KV cache blocks in the pool")
        .callback(cb -> cb.call(totalBlocks))
        .register(registry);
    CounterWithCallback.builder()
        .name("starserve_worker_prefix_cache_hit_tokens_total")
        .help("prompt tokens whose KV came from the prefix cache")
        .callback(cb -> cb.call(engine.stats().prefixCacheHitTokensTotal()))
        .register(registry);
    CounterWithCallback.builder()
        .name("starserve_worker_prefix_cache_query_tokens_total")
        .help("tokens looked up in the prefix cache at admission (the hit rate's denominator)")
        .callback(cb -> cb.call(engine.stats().prefixCacheQueryTokensTotal()))
        .register(registry);
    batchTokens =
        Histogram.builder()
            .name("starserve_worker_batch_tokens")
            .help("tokens computed per engine step")
            .classicOnly()
            .classicExponentialUpperBounds(1, 2, 14)
            .register(registry);
    stepDuration =
        Histogram.builder()
            .name("starserve_worker_step_duration_seconds")
            .help("duration of one engine step (schedule, forward pass, sampling)")
            .classicOnly()
            .classicExponentialUpperBounds(0.001, 2, 16)
            .register(registry);
    requests =
        Counter.builder()
            .name("starserve_worker_requests_total")
            .help("Generate calls by outcome (a finish reason or an error status)")
            .labelNames("outcome")
            .register(registry);
    if (jvm) {
      JvmMetrics.builder().register(registry);
    }
  }

  /** Records one engine step; called on the engine thread. */
  public void onStep(long steps, int tokensScheduled, long stepNanos, int kvBlocksUsed) {
    batchTokens.observe(tokensScheduled);
    stepDuration.observe(stepNanos / 1e9);
  }

  /** Counts one ended Generate call, e.g. {@code length}, {@code cancelled}, {@code invalid}. */
  public void requestEnded(String outcome) {
    requests.labelValues(outcome).inc();
  }

  /** The registry, for more metrics. */
  public PrometheusRegistry registry() {
    return registry;
  }

  /** Every metric in the Prometheus text format. */
  public byte[] scrape() {
    ByteArrayOutputStream out = new ByteArrayOutputStream(8192);
    try {
      writer.write(out, registry.scrape());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return out.toByteArray();
  }
}
