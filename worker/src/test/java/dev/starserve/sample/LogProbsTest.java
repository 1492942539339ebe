package dev.starserve.sample;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Arrays;
import java.util.Comparator;
import java.util.SplittableRandom;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

class LogProbsTest {

  @Test
  void topKEqualsAStableSortByDescendingLogitForEveryK() {
    SplittableRandom r = new SplittableRandom(3);
    float[] logits = new float[500];
    for (int i = 0; i < logits.length; i++) {
      logits[i] = (float) Math.floor(r.nextGaussian() * 8) / 4; // many ties
    }
    Integer[] order = IntStream.range(0, logits.length).boxed().toArray(Integer[]::new);
    Arrays.sort(order, Comparator.comparingDouble((Integer i) -> -logits[i]));
    for (int k : new int[] {0, 1, 2, 20, 500, 600}) {
      int[] expected =
          Arrays.stream(order).limit(Math.min(k, logits.length)).mapToInt(i -> i).toArray();
      assertArrayEquals(expected, LogProbs.topK(logits, 0, logits.length, k), "k=" + k);
    }
  }

  @Test
  void logSumExpIsStableForLargeLogitsAndMatchesTheDefinition() {
    float[] logits = {1000f, 1000f, 999f, -5f};
    double expected = 1000 + Math.log(2 + Math.exp(-1) + Math.exp(-1005));
    assertEquals(expected, LogProbs.logSumExp(logits, 0, 4), 1e-9);
    float[] small = {0.5f, -1.25f, 2f};
    double direct = Math.log(Math.exp(0.5) + Math.exp(-1.25) + Math.exp(2));
    assertEquals(direct, LogProbs.logSumExp(small, 0, 3), 1e-12); // three entries: the tail
  }

  /** Vocabulary-sized rows (whole vector chunks and a tail) against the float64 definition. */
  @Test
  void logSumExpOfLongRowsMatchesTheFloat64DefinitionWithin1e6() {
    SplittableRandom r = new SplittableRandom(11);
    for (int n : new int[] {49152, 50257, 4096 + 7, 257}) {
      for (double std : new double[] {0.5, 4, 30}) {
        float[] logits = new float[n + 5];
        for (int i = 0; i < logits.length; i++) {
          logits[i] = (float) (r.nextGaussian() * std + 3);
        }
        logits[5 + n / 3] = Float.NEGATIVE_INFINITY; // a banned id
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 5; i < n + 5; i++) {
          max = Math.max(max, logits[i]);
        }
        double sum = 0;
        for (int i = 5; i < n + 5; i++) {
          sum += Math.exp(logits[i] - max);
        }
        double expected = max + Math.log(sum);
        assertEquals(expected, LogProbs.logSumExp(logits, 5, n), 1e-6, "n=" + n + " std=" + std);
      }
    }
    float[] banned = new float[64];
    Arrays.fill(banned, Float.NEGATIVE_INFINITY);
    assertEquals(Double.NEGATIVE_INFINITY, LogProbs.logSumExp(banned, 0, 64));
  }

  @Test
  void argmaxPicksTheFirstOfEqualMaxima() {
    float[] logits = {0f, 3f, -1f, 3f};
    assertEquals(1, LogProbs.argmax(logits, 0, 4));
    assertEquals(3, LogProbs.argmax(logits, 2, 2) + 2);
  }
}
