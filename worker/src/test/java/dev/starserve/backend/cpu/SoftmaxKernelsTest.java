package dev.starserve.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class SoftmaxKernelsTest {
  private static double relErr(double got, double want) {
    return Math.abs(got - want) / want;
  }

  @Test
  void scalarExpIsWithinAFewUlpsOfMathExpOverTheWholeRange() {
    double worst = 0;
    for (float x = -87f; x <= 0f; x += 0.001f) {
      worst = Math.max(worst, relErr(SoftmaxKernels.exp(x), Math.exp(x)));
    }
    assertTrue(worst < 5e-7, "worst relative error " + worst);
    assertEquals(1f, SoftmaxKernels.exp(0f));
    assertEquals(1f, SoftmaxKernels.exp(-0f));
  }

  @Test
  void argumentsBelowTheFloorGiveATinyPositiveNumberNotNaN() {
    for (float x : new float[] {-88f, -1000f, Float.NEGATIVE_INFINITY, -Float.MAX_VALUE}) {
      float e = SoftmaxKernels.exp(x);
      assertTrue(e > 0 && e < 1e-37, x + " -> " + e);
    }
  }

  @Test
  void vectorLoopMatchesTheScalarTwinAndMathExpAtEveryLength() {
    SplittableRandom rnd = new SplittableRandom(11);
    for (int len = 1; len <= 70; len++) {
      float[] s = new float[len];
      float max = Float.NEGATIVE_INFINITY;
      for (int j = 0; j < len; j++) {
        s[j] = (float) (rnd.nextDouble() * 40 - 30);
        max = Math.max(max, s[j]);
      }
      float[] scalar = s.clone();
      double want = 0;
      for (int j = 0; j < len; j++) {
        want += Math.exp(s[j] - max); // the argument rounded to float, as the kernel sees it
      }
      float sum = SoftmaxKernels.expShiftedInPlace(s, len, max);
      for (int j = 0; j < len; j++) {
        float twin = SoftmaxKernels.exp(scalar[j] - max);
        assertEquals(twin, s[j], Math.ulp(twin) * 2, "len " + len + " j " + j);
        assertTrue(relErr(s[j], Math.exp(scalar[j] - max)) < 5e-7);
      }
      assertTrue(relErr(sum, want) < 1e-6, "sum at len " + len);
    }
  }
}
