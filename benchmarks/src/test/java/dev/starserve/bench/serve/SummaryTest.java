package dev.starserve.bench.serve;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import org.junit.jupiter.api.Test;

/** Percentiles against values worked out by hand (and by numpy.percentile's default). */
class SummaryTest {
  private static final double EPS = 1e-12;

  @Test
  void oneToTenShuffledGivesTheLinearlyInterpolatedPercentiles() {
    double[] values = {7, 3, 10, 1, 9, 2, 8, 5, 4, 6};
    double[] copy = values.clone();
    Summary s = Summary.of(values);
    assertEquals(10, s.count());
    assertEquals(5.5, s.mean(), EPS);
    assertEquals(5.5, s.p50(), EPS); // rank 4.5: halfway between 5 and 6
    assertEquals(9.1, s.p90(), EPS); // rank 8.1: 9 + 0.1 · (10 − 9)
    assertEquals(9.91, s.p99(), EPS); // rank 8.91
    assertEquals(1, s.min(), EPS);
    assertEquals(10, s.max(), EPS);
    assertArrayEquals(copy, values, "the input is not sorted in place");
  }

  @Test
  void unevenGapsInterpolateWithinTheRightPair() {
    Summary s = Summary.of(new double[] {50, 15, 40, 20, 35});
    assertEquals(32, s.mean(), EPS);
    assertEquals(35, s.p50(), EPS); // rank 2 exactly
    assertEquals(46, s.p90(), EPS); // rank 3.6: 40 + 0.6 · 10
    assertEquals(49.6, s.p99(), EPS); // rank 3.96
  }

  @Test
  void theEndsAreTheExtremesAndOneValueIsEveryPercentile() {
    double[] sorted = {2, 4, 8};
    assertEquals(2, Summary.percentile(sorted, 0), EPS);
    assertEquals(8, Summary.percentile(sorted, 100), EPS);
    assertEquals(6, Summary.percentile(sorted, 75), EPS);
    Summary one = Summary.of(new double[] {7});
    assertEquals(7, one.p50(), EPS);
    assertEquals(7, one.p99(), EPS);
    assertEquals(7, one.mean(), EPS);
  }

  @Test
  void noValuesGiveNaNsAndNullsInTheJson() {
    Summary s = Summary.of(new double[0]);
    assertEquals(0, s.count());
    assertTrue(Double.isNaN(s.p50()));
    Map<String, Object> m = s.toMap();
    assertEquals(0, m.get("count"));
    assertNull(m.get("mean"));
    assertNull(m.get("p99"));
  }

  @Test
  void percentileOutsideZeroToHundredIsRejected() {
    assertThrows(IllegalArgumentException.class, () -> Summary.percentile(new double[] {1}, 101));
    assertThrows(IllegalArgumentException.class, () -> Summary.percentile(new double[0], 50));
  }

  @Test
  void recorderComputesTpotFromTheGapsAfterTheFirstToken() {
    LatencyRecorder r = new LatencyRecorder();
    // 5 tokens: first at 100 ms, last at 500 ms → 4 gaps of 100 ms.
    r.record(100_000_000L, 500_000_000L, 64, 5, 5);
    // 1 token: a TTFT and an E2E but no TPOT; fewer than the 5 asked, so short.
    r.record(200_000_000L, 200_000_000L, 64, 1, 5);
    assertEquals(2, r.count());
    assertEquals(1, r.shortRequests());
    assertEquals(128, r.promptTokens());
    assertEquals(6, r.outputTokens());
    assertEquals(1, r.tpotMillis().count());
    assertEquals(100, r.tpotMillis().mean(), 1e-9);
    assertEquals(150, r.ttftMillis().mean(), 1e-9);
    assertEquals(350, r.e2eMillis().mean(), 1e-9);
  }
}
