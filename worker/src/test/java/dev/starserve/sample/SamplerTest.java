package dev.starserve.sample;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Comparator;
import java.util.SplittableRandom;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/**
 * The sampler against a naive reference written straight from HuggingFace's logits-processor
 * definitions: full sorts, double math, one warper after another.
 */
class SamplerTest {
  static final int V = 300;

  static float[] randomLogits(long seed, boolean ties) {
    SplittableRandom r = new SplittableRandom(seed);
    float[] l = new float[V];
    for (int i = 0; i < V; i++) {
      double g = r.nextGaussian() * 3;
      l[i] = ties ? (float) (Math.round(g * 2) / 2.0) : (float) g;
    }
    return l;
  }

  static SamplingParams params(double t, int k, double p, double typ, double minP) {
    return new SamplingParams(t, k, p, typ, minP, 1.0, 0, 0, 7);
  }

  // ---- naive reference -------------------------------------------------------------------

  static double[] softmax(double[] s) {
    double max = Arrays.stream(s).max().orElseThrow();
    double[] p = new double[s.length];
    double sum = 0;
    for (int i = 0; i < s.length; i++) {
      p[i] = s[i] == Double.NEGATIVE_INFINITY ? 0 : Math.exp(s[i] - max);
      sum += p[i];
    }
    for (int i = 0; i < s.length; i++) {
      p[i] /= sum;
    }
    return p;
  }

  static Integer[] order(double[] key, boolean descending) {
    Integer[] idx = IntStream.range(0, key.length).boxed().toArray(Integer[]::new);
    Comparator<Integer> c = Comparator.comparingDouble(i -> key[i]);
    Arrays.sort(idx, descending ? c.reversed() : c);
    return idx;
  }

  static double[] reference(float[] logits, SamplingParams sp) {
    double[] s = new double[V];
    for (int i = 0; i < V; i++) {
      // float division, as the logits tensor is float32 in HF
      s[i] = sp.temperature() != 1.0 ? logits[i] / (float) sp.temperature() : logits[i];
    }
    if (sp.topK() > 0) {
      double kth = s[order(s, true)[sp.topK() - 1]];
      for (int i = 0; i < V; i++) {
        if (s[i] < kth) {
          s[i] = Double.NEGATIVE_INFINITY;
        }
      }
    }
    if (sp.topP() < 1) {
      // HF: ascending sort, cumulative softmax, remove where cumulative <= 1 - top_p, keep the top
      double[] p = softmax(s);
      Integer[] asc = order(p, false);
      double cum = 0;
      boolean[] remove = new boolean[V];
      for (int j = 0; j < V; j++) {
        cum += p[asc[j]];
        remove[asc[j]] = cum <= 1 - sp.topP() + 1e-12;
      }
      remove[asc[V - 1]] = false;
      for (int i = 0; i < V; i++) {
        if (remove[i]) {
          s[i] = Double.NEGATIVE_INFINITY;
        }
      }
    }
    if (sp.minP() > 0) {
      double[] p = softmax(s);
      double top = Arrays.stream(p).max().orElseThrow();
      for (int i = 0; i < V; i++) {
        if (p[i] < sp.minP() * top) {
          s[i] = Double.NEGATIVE_INFINITY;
        }
      }
    }
    if (sp.typicalP() < 1) {
      double[] p = softmax(s);
      double ent = 0;
      for (double x : p) {
        if (x > 0) {
          ent -= x * Math.log(x);
        }
      }
      double[] shifted = new double[V];
      for (int i = 0; i < V; i++) {
        shifted[i] = p[i] > 0 ? Math.abs(-Math.log(p[i]) - ent) : Double.POSITIVE_INFINITY;
      }
      Integer[] asc = order(shifted, false);
      double cum = 0;
      int last = 0;
      for (int j = 0; j < V; j++) {
        cum += p[asc[j]];
        if (cum < sp.typicalP()) {
          last = j + 1;
        }
      }
      last = Math.min(last, V - 1);
      double threshold = shifted[asc[last]];
      for (int i = 0; i < V; i++) {
        if (shifted[i] > threshold) {
          s[i] = Double.NEGATIVE_INFINITY;
        }
      }
    }
    return softmax(s);
  }

  // ---- tests -----------------------------------------------------------------------------

  @Test
  void everyWarperAloneAndCombinedMatchesTheNaiveReference() {
    SamplingParams[] cases = {
      params(1.0, 0, 1, 1, 0),
      params(0.7, 0, 1, 1, 0),
      params(1.0, 20, 1, 1, 0),
      params(1.0, 0, 0.9, 1, 0),
      params(1.0, 0, 0.3, 1, 0),
      params(1.0, 0, 1, 1, 0.05),
      params(1.0, 0, 1, 0.8, 0),
      params(1.0, 0, 1, 0.2, 0),
      params(0.8, 40, 0.95, 0.9, 0.01),
      params(1.3, 5, 0.5, 1, 0.2),
    };
    for (int c = 0; c < cases.length; c++) {
      for (long seed = 1; seed <= 4; seed++) {
        // NOTE: no ties here: HF's sort order among equal probabilities is unspecified
        float[] logits = randomLogits(seed * 31 + c, false);
        double[] ref = reference(logits, cases[c]);
        double[] got = new Sampler(cases[c], V).distribution(logits, 0);
        assertArrayEquals(ref, got, 1e-9, "case " + c + " seed " + seed + ": " + cases[c]);
      }
    }
  }

  @Test
  void topKKeepsAllTokensTiedWithTheKthValue() {
    float[] logits = new float[V];
    Arrays.fill(logits, -5f);
    logits[3] = 2f;
    logits[10] = 1f;
    logits[11] = 1f;
    double[] d = new Sampler(params(1, 2, 1, 1, 0), V).distribution(logits, 0);
    long kept = Arrays.stream(d).filter(x -> x > 0).count();
    assertEquals(3, kept);
  }

  @Test
  void repetitionPenaltyFollowsHuggingFaceAndCoversPromptAndOutput() {
    float[] logits = new float[V];
    logits[1] = 2f;
    logits[2] = -2f;
    logits[3] = 2f;
    Sampler s = new Sampler(new SamplingParams(0, 0, 1, 1, 0, 2.0, 0, 0, 1), V);
    s.observePrompt(new int[] {1});
    s.observeGenerated(2);
    // greedy after penalty: 1 → 1.0, 2 → −4, 3 stays 2 → argmax 3
    assertEquals(3, s.sample(logits, 0));
    Sampler plain = new Sampler(new SamplingParams(1, 0, 1, 1, 0, 2.0, 0, 0, 1), V);
    plain.observePrompt(new int[] {1, 2});
    double[] d = plain.distribution(logits, 0);
    double[] expected = new double[V];
    for (int i = 0; i < V; i++) {
      expected[i] = logits[i];
    }
    expected[1] = 1.0;
    expected[2] = -4.0;
    assertArrayEquals(softmax(expected), d, 1e-9);
  }

  @Test
  void presenceAndFrequencyPenaltiesCountGeneratedTokensOnly() {
    float[] logits = new float[V];
    Sampler s = new Sampler(new SamplingParams(1, 0, 1, 1, 0, 1, 0.5, 0.25, 1), V);
    s.observePrompt(new int[] {4, 4, 4}); // the prompt does not count
    s.observeGenerated(5);
    s.observeGenerated(5);
    s.observeGenerated(6);
    double[] expected = new double[V];
    expected[5] = -(0.25 * 2 + 0.5);
    expected[6] = -(0.25 + 0.5);
    assertArrayEquals(softmax(expected), s.distribution(logits, 0), 1e-7);
  }

  @Test
  void sameSeedSameChoicesWhateverElseIsSampledInBetween() {
    SamplingParams sp = new SamplingParams(1.0, 50, 0.95, 1, 0, 1.1, 0.1, 0.1, 1234);
    Sampler a = new Sampler(sp, V);
    Sampler b = new Sampler(sp, V);
    Sampler other = new Sampler(sp.withSeed(99), V);
    int[] ca = new int[40];
    int[] cb = new int[40];
    int[] co = new int[40];
    for (int i = 0; i < 40; i++) {
      float[] logits = randomLogits(500 + i, false);
      ca[i] = a.sample(logits, 0);
      a.observeGenerated(ca[i]);
      co[i] = other.sample(logits, 0); // interleaved
      other.observeGenerated(co[i]);
      cb[i] = b.sample(logits, 0);
      b.observeGenerated(cb[i]);
    }
    assertArrayEquals(ca, cb);
    assertNotEquals(Arrays.toString(ca), Arrays.toString(co));
  }

  @Test
  void drawsFollowTheDistribution() {
    float[] logits = new float[5];
    double[] target = {0.1, 0.2, 0.3, 0.15, 0.25};
    for (int i = 0; i < 5; i++) {
      logits[i] = (float) Math.log(target[i]);
    }
    Sampler s = new Sampler(new SamplingParams(1, 0, 1, 1, 0, 1, 0, 0, 42), 5);
    int[] counts = new int[5];
    int draws = 20000;
    for (int i = 0; i < draws; i++) {
      counts[s.sample(logits, 0)]++;
    }
    for (int i = 0; i < 5; i++) {
      assertEquals(target[i], counts[i] / (double) draws, 0.02, "token " + i);
    }
  }

  @Test
  void suppressionBansForOneCallAndGreedyPicksTheLowestIdOnTies() {
    float[] logits = new float[V];
    logits[7] = 5f;
    logits[9] = 5f;
    Sampler s = new Sampler(SamplingParams.greedy(), V);
    assertEquals(7, s.sample(logits, 0));
    s.suppressNext(new int[] {7});
    assertEquals(9, s.sample(logits, 0));
    assertEquals(7, s.sample(logits, 0));
    float[] row = Arrays.copyOf(logits, V);
    s.sample(logits, 0);
    assertArrayEquals(row, logits, "the caller's logits are untouched");
  }

  @Test
  void everyOutOfRangeFieldIsRejectedByName() {
    String[][] bad = {
      {"temperature", "-1"},
      {"top_k", "-1"},
      {"top_p", "0"},
      {"top_p", "1.5"},
      {"typical_p", "0"},
      {"min_p", "1.5"},
      {"repetition_penalty", "0"},
      {"presence_penalty", "3"},
      {"frequency_penalty", "-3"},
    };
    for (String[] b : bad) {
      double v = Double.parseDouble(b[1]);
      IllegalArgumentException e =
          assertThrows(
              IllegalArgumentException.class,
              () ->
                  new SamplingParams(
                      b[0].equals("temperature") ? v : 1,
                      b[0].equals("top_k") ? (int) v : 0,
                      b[0].equals("top_p") ? v : 1,
                      b[0].equals("typical_p") ? v : 1,
                      b[0].equals("min_p") ? v : 0,
                      b[0].equals("repetition_penalty") ? v : 1,
                      b[0].equals("presence_penalty") ? v : 0,
                      b[0].equals("frequency_penalty") ? v : 0,
                      0));
      assertTrue(e.getMessage().startsWith(b[0] + " must be"), e.getMessage());
    }
  }
}
