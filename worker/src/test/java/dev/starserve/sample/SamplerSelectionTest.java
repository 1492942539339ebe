package dev.starserve.sample;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.Arrays;
import java.util.Comparator;
import java.util.SplittableRandom;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/**
 * Top-p and typical-p cuts (a weighted quickselect) against their one-by-one definition: sort the
 * tokens (probability descending, or distance ascending; lower id first on ties), take them in that
 * order until the running mass reaches the target. That is what the sampler's earlier binary heap
 * did. The quickselect sums the mass in another order, so a cut may differ, but only where a
 * partial sum lies within rounding (n·ulp(1)) of the target; such cases are counted and must stay
 * rare.
 */
class SamplerSelectionTest {
  static final int[] SIZES = {1, 2, 3, 5, 16, 300, 4096};
  static final int BIG = 49152;
  static final double[] TOP_P = {1e-300, 1e-9, 0.1, 0.5, 0.9, 0.95, 0.999999, 1 - 0x1p-53};
  static final double[] TYPICAL_P = {1e-9, 0.2, 0.5, 0.9, 0.999999};

  enum Shape {
    FLAT(true), // every finite logit equal
    NEAR_FLAT(false), // N(0, 0.01²)
    GAUSSIAN(false), // N(0, 2²), about SamplerBench's flat case
    PEAKED(false), // N(0, 4²) and up to three logits 15-30 above
    TIES(true), // N(0, 3²) rounded to halves: many exact ties
    FEW_LEVELS(true), // 0, 1 or 2: nearly all tied
    UNDERFLOW(false); // N(0, 400²): many probabilities underflow to 0 in double

    /** Whether running sums of equal probabilities may land on the target (k · 1/m ≈ top_p). */
    final boolean ties;

    Shape(boolean ties) {
      this.ties = ties;
    }
  }

  /** One row of logits; about a third of the rows also ban a random share of ids (−∞). */
  static float[] logits(Shape shape, int n, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    float[] l = new float[n];
    for (int i = 0; i < n; i++) {
      double g = r.nextGaussian();
      l[i] =
          switch (shape) {
            case FLAT -> 1.5f;
            case NEAR_FLAT -> (float) (g * 0.01);
            case GAUSSIAN -> (float) (g * 2);
            case PEAKED -> (float) (g * 4);
            case TIES -> (float) (Math.round(g * 6) / 2.0);
            case FEW_LEVELS -> r.nextInt(3);
            case UNDERFLOW -> (float) (g * 400);
          };
    }
    if (shape == Shape.PEAKED) {
      for (int j = 0; j < 3; j++) {
        l[r.nextInt(n)] = 15 + 5 * j + r.nextInt(5); // distinct, so not tied with each other
      }
    }
    if (r.nextInt(3) == 0) {
      double share = r.nextDouble() * 0.9;
      for (int i = 0; i < n; i++) {
        if (r.nextDouble() < share) {
          l[i] = Float.NEGATIVE_INFINITY;
        }
      }
      l[r.nextInt(n)] = 0.5f; // at least one finite logit
    }
    return l;
  }

  /** top_k for a row: off for half of them, else 1, 3 or 50. */
  static int topK(long seed) {
    int[] ks = {0, 0, 0, 1, 3, 50};
    return ks[new SplittableRandom(seed ^ 0x5DEECE66DL).nextInt(ks.length)];
  }

  static SamplingParams params(int k, double topP, double typicalP) {
    return new SamplingParams(1.0, k, topP, typicalP, 0, 1.0, 0, 0, 7);
  }

  // ---- reference -------------------------------------------------------------------------

  /** Top-k as the sampler applies it (ties at the k-th value kept). */
  static float[] applyTopK(float[] logits, int k) {
    float[] w = logits.clone();
    if (k > 0 && k < w.length) {
      float[] sorted = w.clone();
      Arrays.sort(sorted);
      float kth = sorted[w.length - k];
      for (int i = 0; i < w.length; i++) {
        if (w[i] < kth) {
          w[i] = Float.NEGATIVE_INFINITY;
        }
      }
    }
    return w;
  }

  /** The sampler's softmax, operation for operation, so that ties and rankings agree exactly. */
  static double[] softmax(float[] w) {
    float max = Float.NEGATIVE_INFINITY;
    for (float x : w) {
      max = Math.max(max, x);
    }
    double[] p = new double[w.length];
    double sum = 0;
    for (int i = 0; i < w.length; i++) {
      p[i] = w[i] == Float.NEGATIVE_INFINITY ? 0 : Math.exp(w[i] - (double) max);
      sum += p[i];
    }
    for (int i = 0; i < w.length; i++) {
      p[i] /= sum;
    }
    return p;
  }

  /** The tokens with p > 0, sorted by key (descending or ascending), lower id first on ties. */
  static int[] rank(double[] p, double[] key, boolean descending) {
    Comparator<Integer> byKey = Comparator.comparingDouble(i -> key[i]);
    Comparator<Integer> c =
        (descending ? byKey.reversed() : byKey).thenComparing(Comparator.naturalOrder());
    return IntStream.range(0, p.length)
        .filter(i -> p[i] > 0)
        .boxed()
        .sorted(c)
        .mapToInt(Integer::intValue)
        .toArray();
  }

  /** Running mass, one token at a time in rank order: cum[j] = mass of order[0..j]. */
  static double[] cumulative(int[] order, double[] p) {
    double[] cum = new double[order.length];
    double acc = 0;
    for (int j = 0; j < order.length; j++) {
      acc += p[order[j]];
      cum[j] = acc;
    }
    return cum;
  }

  /** The rank at which the one-by-one walk stops: the first whose running mass reaches target. */
  static int stop(double[] cum, double target) {
    for (int j = 0; j < cum.length; j++) {
      if (cum[j] >= target) {
        return j;
      }
    }
    return cum.length - 1;
  }

  static double[] distances(double[] p) {
    double entropy = 0;
    for (double x : p) {
      if (x > 0) {
        entropy -= x * Math.log(x);
      }
    }
    double[] d = new double[p.length];
    for (int i = 0; i < p.length; i++) {
      d[i] = p[i] > 0 ? Math.abs(-Math.log(p[i]) - entropy) : Double.NaN;
    }
    return d;
  }

  /**
   * Counts the cases checked and those that differed within rounding. A difference is expected only
   * where the running mass can sit on the target: sums of tied probabilities (k · 1/m = 0.5), or a
   * target within 1e-6 of 1, which the tail's running mass approaches by less than an ulp per token
   * for many ranks. Anywhere else it would hint at a bug that the tolerance hides.
   */
  static final class Tally {
    int cases;
    int withinRounding;
    int unexpected;

    void assertFewAndExplained() {
      assertEquals(0, unexpected, "cuts that differ on untied rows with a target below 1 - 1e-6");
      assertTrue(
          withinRounding * 20 < cases,
          withinRounding + " of " + cases + " cuts differ within rounding");
    }
  }

  /**
   * Checks one cut. The sampler's kept set must be what stopping at some rank in [gotFirst,
   * gotLast] keeps; if the reference stops elsewhere, the running mass between the two stops must
   * be within rounding of the target.
   */
  static void compareStops(
      String what,
      Shape shape,
      double[] cum,
      double target,
      int ref,
      int gotFirst,
      int gotLast,
      Tally t) {
    t.cases++;
    if (ref >= gotFirst && ref <= gotLast) {
      return;
    }
    double tol = cum.length * Math.ulp(1.0);
    // the sampler walked past ranks the reference stopped at, or stopped where it walked on
    double gap = ref < gotFirst ? cum[gotFirst - 1] - target : target - cum[gotLast];
    if (!(gap <= tol)) {
      fail(
          what
              + ": reference stops at rank "
              + ref
              + ", sampler at ["
              + gotFirst
              + ", "
              + gotLast
              + "]; the running mass misses the target by "
              + gap
              + " > "
              + tol);
    }
    t.withinRounding++;
    if (!shape.ties && target < 1 - 1e-6) {
      t.unexpected++;
    }
  }

  /** The distribution the sampler would return for w cut to `kept`, computed afresh. */
  static double[] freshSoftmax(float[] w, boolean[] kept) {
    float[] c = w.clone();
    for (int i = 0; i < c.length; i++) {
      if (!kept[i]) {
        c[i] = Float.NEGATIVE_INFINITY;
      }
    }
    return softmax(c);
  }

  static void assertCloseToFresh(String what, double[] fresh, double[] got) {
    for (int i = 0; i < got.length; i++) {
      if (!(Math.abs(got[i] - fresh[i]) <= 1e-12)) {
        fail(what + ": p[" + i + "] = " + got[i] + ", a fresh softmax gives " + fresh[i]);
      }
    }
  }

  static void checkTopP(Shape shape, int n, double topP, long seed, Tally t) {
    float[] logits = logits(shape, n, seed);
    int k = topK(seed);
    String what = shape + " n=" + n + " seed=" + seed + " top_k=" + k + " top_p=" + topP;
    double[] got = new Sampler(params(k, topP, 1), n).distribution(logits, 0);

    float[] w = applyTopK(logits, k);
    double[] p = softmax(w);
    int[] order = rank(p, p, true);
    double[] cum = cumulative(order, p);
    boolean[] kept = new boolean[n];
    int count = 0;
    for (int i = 0; i < n; i++) {
      kept[i] = got[i] > 0;
      count += kept[i] ? 1 : 0;
    }
    assertTrue(count > 0 && count <= order.length, what + ": kept " + count + " ids");
    for (int j = 0; j < count; j++) {
      assertTrue(kept[order[j]], what + ": kept " + count + " ids but not rank " + j);
    }
    compareStops(what, shape, cum, topP, stop(cum, topP), count - 1, count - 1, t);
    assertCloseToFresh(what, freshSoftmax(w, kept), got);
  }

  static void checkTypical(Shape shape, int n, double typicalP, long seed, Tally t) {
    float[] logits = logits(shape, n, seed);
    int k = topK(seed);
    String what = shape + " n=" + n + " seed=" + seed + " top_k=" + k + " typical_p=" + typicalP;
    double[] got = new Sampler(params(k, 1, typicalP), n).distribution(logits, 0);

    float[] w = applyTopK(logits, k);
    double[] p = softmax(w);
    double[] dist = distances(p);
    int[] order = rank(p, dist, false);
    double[] cum = cumulative(order, p);
    boolean[] kept = new boolean[n];
    double threshold = Double.NEGATIVE_INFINITY;
    for (int i = 0; i < n; i++) {
      kept[i] = got[i] > 0;
      if (kept[i]) {
        assertTrue(p[i] > 0, what + ": kept id " + i + " had p = 0");
        threshold = Math.max(threshold, dist[i]);
      }
    }
    assertTrue(threshold > Double.NEGATIVE_INFINITY, what + ": nothing kept");
    int first = -1;
    int last = -1;
    for (int j = 0; j < order.length; j++) {
      int id = order[j];
      assertEquals(
          dist[id] <= threshold,
          kept[id],
          what + ": id " + id + " at distance " + dist[id] + ", kept up to " + threshold);
      if (dist[id] == threshold) {
        first = first < 0 ? j : first;
        last = j;
      }
    }
    compareStops(what, shape, cum, typicalP, stop(cum, typicalP), first, last, t);
    // ids with p = 0 stay in w, as HF leaves them; their fresh probability is 0 as well
    boolean[] inW = kept.clone();
    for (int i = 0; i < n; i++) {
      inW[i] |= p[i] == 0 && w[i] != Float.NEGATIVE_INFINITY;
    }
    assertCloseToFresh(what, freshSoftmax(w, inW), got);
  }

  // ---- tests -----------------------------------------------------------------------------

  @Test
  void topPKeepsTheSameTokensAsTakingThemOneByOneInRankOrder() {
    Tally t = new Tally();
    for (Shape shape : Shape.values()) {
      for (double topP : TOP_P) {
        for (int n : SIZES) {
          for (long seed = 1; seed <= 4; seed++) {
            checkTopP(shape, n, topP, seed * 1000 + n + shape.ordinal(), t);
          }
        }
        checkTopP(shape, BIG, topP, 77 + shape.ordinal(), t);
      }
    }
    assertEquals(Shape.values().length * TOP_P.length * (SIZES.length * 4 + 1), t.cases);
    t.assertFewAndExplained();
  }

  @Test
  void typicalPKeepsTheSameTokensAsTakingThemOneByOneInDistanceOrder() {
    Tally t = new Tally();
    for (Shape shape : Shape.values()) {
      for (double typicalP : TYPICAL_P) {
        for (int n : SIZES) {
          for (long seed = 1; seed <= 4; seed++) {
            checkTypical(shape, n, typicalP, seed * 1000 + n + shape.ordinal(), t);
          }
        }
        checkTypical(shape, BIG, typicalP, 77 + shape.ordinal(), t);
      }
    }
    assertEquals(Shape.values().length * TYPICAL_P.length * (SIZES.length * 4 + 1), t.cases);
    t.assertFewAndExplained();
  }

  @Test
  void selectPrefixStopsExactlyWhereTheOneByOneWalkStopsOnExactSums() {
    // masses that are multiples of 2^-10 sum exactly in any order, so no rounding excuse applies
    SplittableRandom r = new SplittableRandom(3);
    for (int c = 0; c < 2000; c++) {
      int n = 1 + r.nextInt(c < 1000 ? 8 : 600);
      double[] mass = new double[n];
      double[] key = new double[n];
      for (int i = 0; i < n; i++) {
        mass[i] = (1 + r.nextInt(4)) * 0x1p-10;
        key[i] = r.nextInt(1 + n / 4); // many ties, broken by id
      }
      boolean descending = r.nextBoolean();
      double total = Arrays.stream(mass).sum();
      double target = (1 + r.nextInt((int) (total * 1024) + 2)) * 0x1p-10; // may exceed total
      int[] order = rank(mass, key, descending);
      int want = stop(cumulative(order, mass), target) + 1;

      int[] ids = IntStream.range(0, n).toArray();
      int got = Sampler.selectPrefix(ids, n, key, descending, mass, target);
      String what = "case " + c + " n=" + n + " target=" + target + " descending=" + descending;
      assertEquals(want, got, what);
      int[] prefix = Arrays.copyOf(ids, got);
      Arrays.sort(prefix);
      int[] wantPrefix = Arrays.copyOf(order, want);
      Arrays.sort(wantPrefix);
      assertEquals(Arrays.toString(wantPrefix), Arrays.toString(prefix), what);
      assertEquals(order[want - 1], ids[got - 1], what + ": last-ranked id at ids[k - 1]");
      int[] all = ids.clone();
      Arrays.sort(all);
      assertEquals(Arrays.toString(IntStream.range(0, n).toArray()), Arrays.toString(all), what);
    }
  }

  @Test
  void sampleDrawsFromTheCutDistributionAsAFreshSoftmaxGivesIt() {
    // the sampler's generator is SplittableRandom(seed), one nextDouble per sampled token
    int n = 2000;
    SamplingParams[] cases = {
      params(0, 0.9, 1), params(50, 0.5, 1), params(0, 1, 0.8), params(0, 0.95, 0.9)
    };
    for (SamplingParams sp : cases) {
      Sampler s = new Sampler(sp, n);
      SplittableRandom u = new SplittableRandom(sp.seed());
      for (int row = 0; row < 200; row++) {
        float[] logits = logits(Shape.GAUSSIAN, n, 900 + row);
        double[] d = s.distribution(logits, 0);
        boolean[] kept = new boolean[n];
        int count = 0;
        for (int i = 0; i < n; i++) {
          kept[i] = d[i] > 0;
          count += kept[i] ? 1 : 0;
        }
        assertTrue(count < n, sp + " row " + row + ": nothing was cut");
        double[] fresh = freshSoftmax(logits, kept);
        double draw = u.nextDouble();
        double acc = 0;
        int want = -1;
        for (int i = 0; i < n && want < 0; i++) {
          acc += fresh[i];
          if (fresh[i] > 0 && draw < acc) {
            want = i;
          }
        }
        for (int i = n - 1; i >= 0 && want < 0; i--) {
          if (fresh[i] > 0) {
            want = i; // the sampler's fallback when rounding leaves the draw beyond the mass
          }
        }
        assertEquals(want, s.sample(logits, 0), sp + " row " + row);
      }
    }
  }
}
