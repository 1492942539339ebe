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
    assertEquals(direct, LogProbs.logSumExp(small, 0, 3), 1e-12);
  }

  @Test
  void argmaxPicksTheFirstOfEqualMaxima() {
    float[] logits = {0f, 3f, -1f, 3f};
    assertEquals(1, LogProbs.argmax(logits, 0, 4));
    assertEquals(3, LogProbs.argmax(logits, 2, 2) + 2);
  }
}
