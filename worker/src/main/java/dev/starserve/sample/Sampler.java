package dev.starserve.sample;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Chooses one request's next token from raw logits, as HuggingFace transformers' {@code generate}
 * does, in this order:
 *
 * <ol>
 *   <li>banned ids ({@link #suppressNext}, e.g. EOS before min_new_tokens) → −∞
 *   <li>repetition penalty over prompt and generated tokens (HF: {@code l > 0 ? l / p : l · p})
 *   <li>presence and frequency penalties over generated tokens (OpenAI / vLLM: {@code l −= f ·
 *       count + p · [count > 0]})
 *   <li>greedy (temperature 0): argmax, lowest id on ties; otherwise
 *   <li>temperature, top-k (ties at the k-th value kept), top-p, min-p, typical-p — HF's warper
 *       order — then one draw from the survivors' softmax.
 * </ol>
 *
 * One per sample; owns its generator, seeded from the request's seed, and draws exactly one number
 * per sampled token, so its choices depend only on its seed and its logits, never on the batch. Not
 * thread-safe. Scratch arrays are per thread and reused, so a step allocates nothing.
 */
public final class Sampler {
  private final SamplingParams params;
  private final int vocab;
  private final SplittableRandom rng;
  private final long[] seen; // bit set: ids in prompt or output (repetition penalty)
  private int[] seenList = new int[64];
  private int seenSize;
  private int[] outCount; // [vocab] generated counts, only when presence/frequency are on
  private int[] outList = new int[16];
  private int outSize;
  private static final int[] NONE = new int[0];
  private int[] suppressed = NONE;

  private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

  /** Per-thread work arrays, grown to the vocabulary once. */
  static final class Scratch {
    float[] work = new float[0];
    double[] probs = new double[0];
    double[] dist = new double[0]; // typical-p: |−log p − H|, NaN where p = 0
    int[] ids = new int[0]; // top-p / typical-p candidates, rearranged by selectPrefix
    float[] select = new float[0];

    void ensure(int v) {
      if (work.length < v) {
        work = new float[v];
        probs = new double[v];
        dist = new double[v];
        ids = new int[v];
        select = new float[v];
      }
    }
  }

  public Sampler(SamplingParams params, int vocabSize) {
    if (vocabSize < 1) {
      throw new IllegalArgumentException("vocabulary size must be >= 1, got " + vocabSize);
    }
    this.params = params;
    this.vocab = vocabSize;
    this.rng = new SplittableRandom(params.seed());
    this.seen = new long[(vocabSize + 63) / 64];
    if (params.presencePenalty() != 0 || params.frequencyPenalty() != 0) {
      outCount = new int[vocabSize];
    }
  }

  public SamplingParams params() {
    return params;
  }

  /** Records the prompt for the repetition penalty. */
  public void observePrompt(int[] promptIds) {
    for (int id : promptIds) {
      markSeen(id);
    }
  }

  /** Records a generated token for the penalties. */
  public void observeGenerated(int id) {
    markSeen(id);
    if (outCount != null) {
      if (outCount[id]++ == 0) {
        if (outSize == outList.length) {
          outList = Arrays.copyOf(outList, outSize * 2);
        }
        outList[outSize++] = id;
      }
    }
  }

  private void markSeen(int id) {
    if (id < 0 || id >= vocab) {
      return;
    }
    long bit = 1L << (id & 63);
    if ((seen[id >>> 6] & bit) == 0) {
      seen[id >>> 6] |= bit;
      if (seenSize == seenList.length) {
        seenList = Arrays.copyOf(seenList, seenSize * 2);
      }
      seenList[seenSize++] = id;
    }
  }

  /**
   * Advances the generator past {@code tokens} sampled tokens without sampling them, so that a
   * request resumed after them (failover) draws what it would have drawn had it never moved: a
   * sampled token takes exactly one draw, a greedy one none.
   */
  public void skipDraws(int tokens) {
    if (params.isGreedy()) {
      return;
    }
    for (int i = 0; i < tokens; i++) {
      rng.nextDouble();
    }
  }

  /** Bans these ids for the next {@link #sample} call only. */
  public void suppressNext(int[] ids) {
    this.suppressed = ids.clone();
  }

  /** Chooses the next token from {@code logits[off, off + vocab)}; the array is not modified. */
  public int sample(float[] logits, int off) {
    Scratch s = SCRATCH.get();
    s.ensure(vocab);
    float[] w = s.work;
    boolean normalized = process(logits, off, s);
    if (params.isGreedy()) {
      return LogProbs.argmax(w, 0, vocab);
    }
    double[] p = s.probs;
    if (!normalized) {
      softmax(w, p);
    }
    double u = rng.nextDouble();
    double acc = 0;
    int last = -1;
    for (int i = 0; i < vocab; i++) {
      if (p[i] > 0) {
        acc += p[i];
        last = i;
        if (u < acc) {
          return i;
        }
      }
    }
    return last; // rounding: u landed beyond the accumulated mass
  }

  /** The final distribution after every step (for tests); greedy gives a one-hot vector. */
  double[] distribution(float[] logits, int off) {
    Scratch s = SCRATCH.get();
    s.ensure(vocab);
    boolean normalized = process(logits, off, s);
    double[] out = new double[vocab];
    if (params.isGreedy()) {
      out[LogProbs.argmax(s.work, 0, vocab)] = 1;
    } else if (normalized) {
      System.arraycopy(s.probs, 0, out, 0, vocab);
    } else {
      softmax(s.work, out);
    }
    return out;
  }

  /**
   * Leaves the processed logits in {@code s.work[0, vocab)} (−∞ = removed) and returns whether
   * {@code s.probs[0, vocab)} already holds their softmax.
   */
  private boolean process(float[] logits, int off, Scratch s) {
    float[] w = s.work;
    System.arraycopy(logits, off, w, 0, vocab);
    for (int id : suppressed) {
      if (id >= 0 && id < vocab) {
        w[id] = Float.NEGATIVE_INFINITY;
      }
    }
    suppressed = NONE;
    float rp = (float) params.repetitionPenalty();
    if (rp != 1f) {
      for (int i = 0; i < seenSize; i++) {
        int id = seenList[i];
        float v = w[id];
        w[id] = v < 0 ? v * rp : v / rp;
      }
    }
    if (outCount != null) {
      float fp = (float) params.frequencyPenalty();
      float pp = (float) params.presencePenalty();
      for (int i = 0; i < outSize; i++) {
        int id = outList[i];
        w[id] -= fp * outCount[id] + pp;
      }
    }
    if (params.isGreedy()) {
      return false;
    }
    if (params.temperature() != 1.0) {
      float t = (float) params.temperature();
      for (int i = 0; i < vocab; i++) {
        w[i] /= t;
      }
    }
    if (params.topK() > 0 && params.topK() < vocab) {
      float kth = kthLargest(w, params.topK(), s.select);
      for (int i = 0; i < vocab; i++) {
        if (w[i] < kth) {
          w[i] = Float.NEGATIVE_INFINITY;
        }
      }
    }
    boolean cut = false;
    if (params.topP() < 1.0) {
      topP(w, s);
      cut = true;
    }
    if (params.minP() > 0) {
      minP(w, s.probs);
      cut = true;
    }
    if (params.typicalP() < 1.0) {
      typical(w, s);
      cut = true;
    }
    if (cut) {
      renormalize(w, s.probs);
    }
    return cut;
  }

  /** softmax of w into p (0 where w is −∞), in double. */
  private void softmax(float[] w, double[] p) {
    float max = Float.NEGATIVE_INFINITY;
    for (int i = 0; i < vocab; i++) {
      max = Math.max(max, w[i]);
    }
    double sum = 0;
    for (int i = 0; i < vocab; i++) {
      double e = w[i] == Float.NEGATIVE_INFINITY ? 0 : Math.exp(w[i] - (double) max);
      p[i] = e;
      sum += e;
    }
    for (int i = 0; i < vocab; i++) {
      p[i] /= sum;
    }
  }

  /**
   * Turns {@code p}, the softmax of {@code w} taken before the last cut, into the softmax after it:
   * zero where the cut set −∞, divide by what is left. Saves {@link #sample} a pass of {@code
   * Math.exp} over the vocabulary.
   *
   * <p>NOTE: equal to a fresh softmax up to rounding: the same exponentials, divided in two steps
   * instead of one. Top-p and min-p always keep the most likely token, so the max does not move;
   * typical-p may drop it, but what it keeps holds at least 1/n² of the mass (its first token has
   * −log p ≤ 2H ≤ 2 log n), so an exponential that the old max made subnormal stays below 1e-290
   * after the division. SamplerSelectionTest holds it to 1e-12 of a fresh softmax.
   */
  private void renormalize(float[] w, double[] p) {
    double sum = 0;
    for (int i = 0; i < vocab; i++) {
      if (w[i] == Float.NEGATIVE_INFINITY) {
        p[i] = 0;
      }
      sum += p[i];
    }
    for (int i = 0; i < vocab; i++) {
      p[i] /= sum;
    }
  }

  /**
   * HF top-p: rank tokens by probability (descending, lower id first on ties) and keep a token
   * while the mass of the tokens ranked above it is below top_p. Leaves the softmax before the cut
   * in {@code s.probs}.
   */
  private void topP(float[] w, Scratch s) {
    double[] p = s.probs;
    softmax(w, p);
    int[] ids = s.ids;
    int n = 0;
    for (int i = 0; i < vocab; i++) {
      if (p[i] > 0) {
        ids[n++] = i;
      } else if (p[i] == 0) {
        w[i] = Float.NEGATIVE_INFINITY; // underflowed: not ranked, so never kept
      }
    }
    if (n == 0) {
      return;
    }
    int kept = selectPrefix(ids, n, p, true, p, params.topP());
    for (int j = kept; j < n; j++) {
      w[ids[j]] = Float.NEGATIVE_INFINITY;
    }
  }

  /** HF min-p: drop tokens whose probability is below min_p × the top probability. */
  private void minP(float[] w, double[] p) {
    softmax(w, p);
    double top = 0;
    for (int i = 0; i < vocab; i++) {
      top = Math.max(top, p[i]);
    }
    double cut = params.minP() * top;
    for (int i = 0; i < vocab; i++) {
      if (p[i] < cut) {
        w[i] = Float.NEGATIVE_INFINITY;
      }
    }
  }

  /**
   * HF typical-p: rank tokens by |−log p − H| (H the entropy), take them in that order until the
   * cumulative probability reaches typical_p, and keep every token whose distance is at most that
   * of the last one taken.
   */
  private void typical(float[] w, Scratch s) {
    double[] p = s.probs;
    softmax(w, p);
    double entropy = 0;
    for (int i = 0; i < vocab; i++) {
      if (p[i] > 0) {
        entropy -= p[i] * Math.log(p[i]);
      }
    }
    double[] dist = s.dist;
    int[] ids = s.ids;
    int n = 0;
    for (int i = 0; i < vocab; i++) {
      if (p[i] > 0) {
        dist[i] = Math.abs(-Math.log(p[i]) - entropy);
        ids[n++] = i;
      } else {
        dist[i] = Double.NaN;
      }
    }
    if (n == 0) {
      return;
    }
    int taken = selectPrefix(ids, n, dist, false, p, params.typicalP());
    double threshold = dist[ids[taken - 1]];
    for (int j = taken; j < n; j++) {
      if (dist[ids[j]] > threshold) {
        w[ids[j]] = Float.NEGATIVE_INFINITY;
      }
    }
  }

  /** The k-th largest value of w (1-based), by quickselect on a copy. */
  private float kthLargest(float[] w, int k, float[] tmp) {
    System.arraycopy(w, 0, tmp, 0, vocab);
    int lo = 0;
    int hi = vocab - 1;
    int target = k - 1; // index in descending order
    while (lo < hi) {
      float pivot = tmp[(lo + hi) >>> 1];
      int i = lo;
      int j = hi;
      while (i <= j) {
        while (tmp[i] > pivot) {
          i++;
        }
        while (tmp[j] < pivot) {
          j--;
        }
        if (i <= j) {
          float t = tmp[i];
          tmp[i] = tmp[j];
          tmp[j] = t;
          i++;
          j--;
        }
      }
      if (target <= j) {
        hi = j;
      } else if (target >= i) {
        lo = i;
      } else {
        break;
      }
    }
    return tmp[target];
  }

  /**
   * Weighted quickselect. Ranks {@code ids[0, n)} by {@code key} (descending or ascending, the
   * lower id first on equal keys) and finds the shortest ranked prefix whose {@code mass} (each >
   * 0) reaches {@code target}, or all n if none does. Rearranges {@code ids} so that this prefix is
   * {@code ids[0, k)}, its last-ranked id at {@code ids[k - 1]}, and returns k. This is what taking
   * the ids one by one in rank order until the running mass reaches the target keeps, in expected
   * O(n) instead of a sort: each round partitions the open range around a random pivot, sums the
   * mass ranked before it, and goes on in one side only.
   *
   * <pre>
   * ids: [ kept, ranked first | open: lo..hi, partitioned each round | cut, ranked last ]
   *       0                    lo                                     hi              n
   * </pre>
   *
   * <p>NOTE: the running mass is summed block by block rather than one id at a time in rank order,
   * so the prefix may differ from that of the one-by-one walk (the binary heap this replaced), but
   * only where a partial sum lies within rounding (a few ulps, at most n·ulp(1)) of {@code target}:
   * in practice where tied probabilities add up to it (k equal p = 1/m with k/m = top_p), or where
   * a target within 1e-6 of 1 meets a tail that adds less than an ulp per token. The pivots come
   * from a fixed sequence, so equal inputs give equal results.
   */
  static int selectPrefix(
      int[] ids, int n, double[] key, boolean descending, double[] mass, double target) {
    int lo = 0;
    int hi = n;
    double above = 0; // mass of ids[0, lo); below target while the loop runs
    long state = 0x9E3779B97F4A7C15L;
    while (lo < hi) {
      state = state * 6364136223846793005L + 1442695040888963407L; // Knuth's MMIX LCG
      int r = lo + (int) (((state >>> 33) * (hi - lo)) >>> 31);
      int pivot = ids[r];
      ids[r] = ids[hi - 1];
      ids[hi - 1] = pivot;
      double pk = key[pivot];
      int mid = lo; // ids[lo, mid) rank before the pivot, ids[mid, j) after it
      double before = 0;
      for (int j = lo; j < hi - 1; j++) {
        int id = ids[j];
        double k = key[id];
        if (descending ? k > pk || (k == pk && id < pivot) : k < pk || (k == pk && id < pivot)) {
          ids[j] = ids[mid];
          ids[mid++] = id;
          before += mass[id];
        }
      }
      ids[hi - 1] = ids[mid];
      ids[mid] = pivot;
      if (above + before >= target) {
        hi = mid; // reached inside ids[lo, mid), which is not empty as above < target
      } else {
        above += before;
        above += mass[pivot];
        lo = mid + 1;
        if (above >= target) {
          return lo; // reached at the pivot
        }
      }
    }
    return lo;
  }
}
