package dev.starserve.bench.serve;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SortedMap;

/**
 * What a {@code bench serve} run measured. Throughputs count completed requests only, over the
 * run's duration (from the first request sent to the last one ended, or to the duration limit).
 * Every request asked for ends up in exactly one of completed, failed (by kind), cancelled at the
 * duration limit, or not sent.
 *
 * @param model the model id asked for (null when the API's default was used)
 * @param errors failed requests by {@link FailureKinds kind}
 * @param errorExamples one message per kind (the first seen)
 * @param delayedArrivals open loop: arrivals that found {@code concurrency} requests in flight and
 *     waited for one to end before they were sent (their latencies start when sent)
 * @param shortRequests completed requests that got fewer tokens than {@code genLen}
 */
public record ServeBenchReport(
    String api,
    String target,
    String model,
    int concurrency,
    double rate,
    int requests,
    int promptLen,
    int genLen,
    double durationSeconds,
    boolean stoppedAtDurationLimit,
    int completed,
    SortedMap<String, Long> errors,
    Map<String, String> errorExamples,
    int cancelledAtLimit,
    int notSent,
    int delayedArrivals,
    long promptTokens,
    long outputTokens,
    int shortRequests,
    Summary ttftMillis,
    Summary tpotMillis,
    Summary e2eMillis) {
  public ServeBenchReport {
    errors = java.util.Collections.unmodifiableSortedMap(new java.util.TreeMap<>(errors));
    errorExamples = Map.copyOf(errorExamples);
  }

  public long failed() {
    return errors.values().stream().mapToLong(Long::longValue).sum();
  }

  public double requestsPerSecond() {
    return perSecond(completed);
  }

  public double outputTokensPerSecond() {
    return perSecond(outputTokens);
  }

  public double promptTokensPerSecond() {
    return perSecond(promptTokens);
  }

  private double perSecond(double count) {
    return durationSeconds > 0 ? count / durationSeconds : 0;
  }

  /** The {@code --json} object (snake_case keys; null where nothing was measured). */
  public Map<String, Object> toMap() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("api", api);
    m.put("target", target);
    m.put("model", model);
    m.put("mode", rate > 0 ? "open" : "closed");
    m.put("concurrency", concurrency);
    m.put("rate", rate > 0 ? rate : null);
    m.put("requests", requests);
    m.put("prompt_len", promptLen);
    m.put("gen_len", genLen);
    m.put("duration_s", durationSeconds);
    m.put("stopped_at_duration_limit", stoppedAtDurationLimit);
    m.put("completed", completed);
    m.put("failed", failed());
    m.put("errors", errors);
    m.put("error_examples", new java.util.TreeMap<>(errorExamples));
    m.put("cancelled_at_limit", cancelledAtLimit);
    m.put("not_sent", notSent);
    m.put("delayed_arrivals", delayedArrivals);
    m.put("requests_per_s", requestsPerSecond());
    m.put("output_tokens_per_s", outputTokensPerSecond());
    m.put("prompt_tokens_per_s", promptTokensPerSecond());
    m.put("prompt_tokens", promptTokens);
    m.put("output_tokens", outputTokens);
    m.put("short_requests", shortRequests);
    m.put("ttft_ms", ttftMillis.toMap());
    m.put("tpot_ms", tpotMillis.toMap());
    m.put("e2e_ms", e2eMillis.toMap());
    return m;
  }

  /** The human-readable report. */
  public String toText() {
    StringBuilder sb = new StringBuilder();
    sb.append(
        String.format(
            Locale.ROOT,
            "bench serve: %s API at %s%s, %s%n",
            api,
            target,
            model == null ? "" : " (model " + model + ")",
            rate > 0
                ? String.format(
                    Locale.ROOT,
                    "open loop at %.3g requests/s, at most %d in flight",
                    rate,
                    concurrency)
                : "closed loop, concurrency " + concurrency));
    sb.append(
        String.format(
            Locale.ROOT,
            "requests:   %d completed, %d failed, %d cancelled at the duration limit, %d not sent"
                + " (of %d)%s%n",
            completed,
            failed(),
            cancelledAtLimit,
            notSent,
            requests,
            delayedArrivals > 0
                ? "; " + delayedArrivals + " arrivals waited for a free slot"
                : ""));
    sb.append(
        String.format(
            Locale.ROOT,
            "duration:   %.2f s%s%n",
            durationSeconds,
            stoppedAtDurationLimit ? " (stopped at the duration limit)" : ""));
    sb.append(
        String.format(
            Locale.ROOT,
            "throughput: %.2f requests/s, %.1f output tokens/s, %.1f prompt tokens/s%n",
            requestsPerSecond(),
            outputTokensPerSecond(),
            promptTokensPerSecond()));
    sb.append(
        String.format(
            Locale.ROOT,
            "tokens:     prompt %d (%s per request, asked %d words), output %d (%s per request,"
                + " asked %d; %d requests got fewer)%n",
            promptTokens,
            perRequest(promptTokens),
            promptLen,
            outputTokens,
            perRequest(outputTokens),
            genLen,
            shortRequests));
    sb.append(
        String.format(
            Locale.ROOT, "%-10s %10s %10s %10s %10s%n", "(ms)", "mean", "p50", "p90", "p99"));
    for (var row :
        List.of(
            Map.entry("TTFT", ttftMillis),
            Map.entry("TPOT", tpotMillis),
            Map.entry("E2E", e2eMillis))) {
      Summary s = row.getValue();
      sb.append(
          String.format(
              Locale.ROOT,
              "%-10s %10s %10s %10s %10s%n",
              row.getKey(),
              ms(s.mean()),
              ms(s.p50()),
              ms(s.p90()),
              ms(s.p99())));
    }
    if (errors.isEmpty()) {
      sb.append("errors:     none\n");
    } else {
      sb.append("errors:\n");
      errors.forEach(
          (kind, count) ->
              sb.append(
                  String.format(
                      Locale.ROOT,
                      "  %-22s %6d  e.g. %s%n",
                      kind,
                      count,
                      errorExamples.getOrDefault(kind, ""))));
    }
    return sb.toString();
  }

  private String perRequest(long tokens) {
    return completed == 0 ? "-" : String.format(Locale.ROOT, "%.1f", (double) tokens / completed);
  }

  private static String ms(double v) {
    return Double.isNaN(v) ? "-" : String.format(Locale.ROOT, "%.1f", v);
  }
}
