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
    int[] heap = new int[0];
    float[] select = new float[0];

    void ensure(int v) {
      if (work.length < v) {
        work = new float[v];
        probs = new double[v];
        heap = new int[v];
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
    process(logits, off, s);
    if (params.isGreedy()) {
      return LogProbs.argmax(w, 0, vocab);
    }
    double[] p = s.probs;
    softmax(w, p);
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
    process(logits, off, s);
    double[] out = new double[vocab];
    if (params.isGreedy()) {
      out[LogProbs.argmax(s.work, 0, vocab)] = 1;
    } else {
      softmax(s.work, out);
    }
    return out;
  }

  /** Leaves the processed logits in {@code s.work[0, vocab)} (−∞ = removed). */
  private void process(float[] logits, int off, Scratch s) {
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
      return;
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
    if (params.topP() < 1.0) {
      topP(w, s);
    }
    if (params.minP() > 0) {
      minP(w, s.probs);
    }
    if (params.typicalP() < 1.0) {
      typical(w, s);
    }
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

  /** HF top-p: keep a token while the mass of the tokens ranked above it is below top_p. */
  private void topP(float[] w, Scratch s) {
    double[] p = s.probs;
    softmax(w, p);
    int n = buildHeap(s.heap, p, true);
    double above = 0;
    double topP = params.topP();
    while (n > 0 && above < topP) {
      int id = s.heap[0];
      n = pop(s.heap, n, p, true);
      above += p[id];
      p[id] = -1; // mark kept
    }
    for (int i = 0; i < vocab; i++) {
      if (p[i] >= 0) {
        w[i] = Float.NEGATIVE_INFINITY;
      }
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
    double[] dist = distances(p, entropy);
    int n = buildHeap(s.heap, dist, false);
    double cum = 0;
    double threshold = Double.POSITIVE_INFINITY;
    while (n > 0) {
      int id = s.heap[0];
      n = pop(s.heap, n, dist, false);
      cum += p[id];
      if (cum >= params.typicalP() || n == 0) {
        threshold = dist[id];
        break;
      }
    }
    for (int i = 0; i < vocab; i++) {
      if (p[i] > 0 && dist[i] > threshold) {
        w[i] = Float.NEGATIVE_INFINITY;
      }
    }
  }

  private static final ThreadLocal<double[]> DIST = ThreadLocal.withInitial(() -> new double[0]);

  private double[] distances(double[] p, double entropy) {
    double[] d = DIST.get();
    if (d.length < vocab) {
      d = new double[vocab];
      DIST.set(d);
    }
    for (int i = 0; i < vocab; i++) {
      d[i] = p[i] > 0 ? Math.abs(-Math.log(p[i]) - entropy) : Double.NaN;
    }
    return d;
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
   * Builds a binary heap of the ids with a usable key (p > 0 for probabilities, a number for
   * distances): a max-heap when {@code max}, else a min-heap. Ties: lower id first.
   */
  private int buildHeap(int[] heap, double[] key, boolean max) {
    int n = 0;
    for (int i = 0; i < vocab; i++) {
      if (max ? key[i] > 0 : !Double.isNaN(key[i])) {
        heap[n++] = i;
      }
    }
    for (int i = n / 2 - 1; i >= 0; i--) {
      siftDown(heap, i, n, key, max);
    }
    return n;
  }

  private static int pop(int[] heap, int n, double[] key, boolean max) {
    heap[0] = heap[--n];
    siftDown(heap, 0, n, key, max);
    return n;
  }

  private static boolean before(int a, int b, double[] key, boolean max) {
    if (key[a] != key[b]) {
      return max ? key[a] > key[b] : key[a] < key[b];
    }
    return a < b;
  }

  private static void siftDown(int[] heap, int i, int n, double[] key, boolean max) {
    while (true) {
      int l = 2 * i + 1;
      if (l >= n) {
        return;
      }
      int best = l;
      if (l + 1 < n && before(heap[l + 1], heap[l], key, max)) {
        best = l + 1;
      }
      if (!before(heap[best], heap[i], key, max)) {
        return;
      }
      int t = heap[i];
      heap[i] = heap[best];
      heap[best] = t;
      i = best;
    }
  }
}
