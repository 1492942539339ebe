package dev.starserve.sample;

/** Log-softmax and top-k over one row of raw logits, in double precision for the sums. */
public final class LogProbs {
  private LogProbs() {}

  /** {@code log Σ exp(logits[off..off+n))}, computed stably. */
  public static double logSumExp(float[] logits, int off, int n) {
    float max = Float.NEGATIVE_INFINITY;
    for (int i = 0; i < n; i++) {
      max = Math.max(max, logits[off + i]);
    }
    double sum = 0;
    for (int i = 0; i < n; i++) {
      sum += Math.exp(logits[off + i] - (double) max);
    }
    return max + Math.log(sum);
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
