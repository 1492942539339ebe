package dev.starserve.sample;

import dev.starserve.backend.cpu.VectorMath;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/** Log-softmax and top-k over one row of raw logits, in double precision for the sums. */
public final class LogProbs {
  private LogProbs() {}

  private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
  private static final int L = F.length();
  private static final int CHUNK = 16 * L; // values summed in float lanes before joining the double

  /**
   * {@code log Σ exp(logits[off..off+n))}, computed stably: the maximum first, then {@code exp(x −
   * max)} on whole vectors ({@link VectorMath#exp}, within 2 ulps of the exact value in float32),
   * each lane summing at most 16 values in float before the chunk's sum joins a double; the tail in
   * double. Over a 49152-entry vocabulary that is about 20x faster than {@code Math.exp} per entry,
   * and the result stays within a few 1e-7 of the float64 definition (the logits themselves are
   * float32).
   */
  public static double logSumExp(float[] logits, int off, int n) {
    float max = max(logits, off, n);
    if (Float.isInfinite(max) || Float.isNaN(max)) {
      return max; // every entry −∞ (all banned), or a +∞ / NaN logit: no finite sum to take
    }
    return max + Math.log(sumExp(logits, off, n, max));
  }

  private static float max(float[] x, int off, int n) {
    int bound = F.loopBound(n);
    FloatVector m = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
    int i = 0;
    for (; i < bound; i += L) {
      m = m.max(FloatVector.fromArray(F, x, off + i));
    }
    float max = m.reduceLanes(VectorOperators.MAX);
    for (; i < n; i++) {
      max = Math.max(max, x[off + i]);
    }
    return max;
  }

  private static double sumExp(float[] x, int off, int n, float max) {
    FloatVector m = FloatVector.broadcast(F, max);
    double sum = 0;
    int i = 0;
    for (; i + CHUNK <= n; i += CHUNK) {
      sum += chunkExp(x, off + i, m);
    }
    for (; i < n; i++) {
      sum += Math.exp(x[off + i] - (double) max);
    }
    return sum;
  }

  /** {@code Σ exp(x[i..i+CHUNK) − m)}: sixteen vectors, one float accumulator. */
  private static double chunkExp(float[] x, int i, FloatVector m) {
    FloatVector acc = FloatVector.zero(F);
    for (int k = 0; k < CHUNK; k += L) {
      acc = acc.add(VectorMath.exp(FloatVector.fromArray(F, x, i + k).sub(m)));
    }
    return VectorMath.sum(acc);
  }

  /** Index of the largest logit in the row (the lowest index on ties, like torch.argmax). */
  public static int argmax(float[] logits, int off, int n) {
    int best = 0;
    float bestV = logits[off];
    for (int i = 1; i < n; i++) {
      if (logits[off + i] > bestV) {
        bestV = logits[off + i];
        best = i;
      }
    }
    return best;
  }

  /**
   * The {@code k} largest entries of the row, best first (ties: lower index first), as indices.
   * O(n·k), fine for the k ≤ 20 the APIs allow.
   */
  public static int[] topK(float[] logits, int off, int n, int k) {
    k = Math.min(k, n);
    int[] idx = new int[k];
    if (k == 0) {
      return idx;
    }
    int size = 0;
    for (int i = 0; i < n; i++) {
      float v = logits[off + i];
      if (size == k && !(v > logits[off + idx[k - 1]])) {
        continue;
      }
      int j = size < k ? size++ : k - 1;
      while (j > 0 && v > logits[off + idx[j - 1]]) {
        idx[j] = idx[j - 1];
        j--;
      }
      idx[j] = i;
    }
    return idx;
  }
}
