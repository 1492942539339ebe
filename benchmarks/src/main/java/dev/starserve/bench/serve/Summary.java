package dev.starserve.bench.serve;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Mean, percentiles and extremes of a set of values. Percentiles interpolate linearly between the
 * two nearest ranks (numpy's default, as vLLM's benchmark reports them): for sorted {@code x} of n
 * values, p lies at rank {@code p/100 · (n − 1)}. Every field is NaN for an empty set.
 */
public record Summary(
    int count, double mean, double p50, double p90, double p99, double min, double max) {
  public static final Summary EMPTY =
      new Summary(0, Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN);

  /** The summary of {@code values} (not modified). */
  public static Summary of(double[] values) {
    if (values.length == 0) {
      return EMPTY;
    }
    double[] sorted = values.clone();
    Arrays.sort(sorted);
    double sum = 0;
    for (double v : sorted) {
      sum += v;
    }
    return new Summary(
        sorted.length,
        sum / sorted.length,
        percentile(sorted, 50),
        percentile(sorted, 90),
        percentile(sorted, 99),
        sorted[0],
        sorted[sorted.length - 1]);
  }

  /** The {@code p}-th percentile (0 to 100) of ascending, non-empty {@code sorted}. */
  public static double percentile(double[] sorted, double p) {
    if (sorted.length == 0) {
      throw new IllegalArgumentException("no values");
    }
    if (!(p >= 0 && p <= 100)) {
      throw new IllegalArgumentException("p must be in [0, 100], got " + p);
    }
    double rank = p / 100 * (sorted.length - 1);
    int lo = (int) Math.floor(rank);
    int hi = Math.min(lo + 1, sorted.length - 1);
    return sorted[lo] + (rank - lo) * (sorted[hi] - sorted[lo]);
  }

  /** {@code count, mean, p50, p90, p99, min, max}; null where there is no value. */
  public Map<String, Object> toMap() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("count", count);
    m.put("mean", orNull(mean));
    m.put("p50", orNull(p50));
    m.put("p90", orNull(p90));
    m.put("p99", orNull(p99));
    m.put("min", orNull(min));
    m.put("max", orNull(max));
    return m;
  }

  private static Double orNull(double d) {
    return Double.isNaN(d) ? null : d;
  }
}
