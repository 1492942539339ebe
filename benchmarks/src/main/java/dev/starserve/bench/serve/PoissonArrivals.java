package dev.starserve.bench.serve;

import java.util.SplittableRandom;

/**
 * The gaps between the arrivals of a Poisson process: independent, exponentially distributed with
 * mean {@code 1 / rate}, from a seeded generator (the same seed, the same schedule).
 */
final class PoissonArrivals {
  private final double ratePerNano;
  private final SplittableRandom random;

  PoissonArrivals(double requestsPerSecond, long seed) {
    if (!(requestsPerSecond > 0) || Double.isInfinite(requestsPerSecond)) {
      throw new IllegalArgumentException("rate must be positive, got " + requestsPerSecond);
    }
    this.ratePerNano = requestsPerSecond / 1e9;
    this.random = new SplittableRandom(seed);
  }

  /** The time to the next arrival, in nanoseconds (inverse-CDF sampling: −ln(1 − U) / rate). */
  long nextGapNanos() {
    return (long) (-Math.log1p(-random.nextDouble()) / ratePerNano);
  }
}
