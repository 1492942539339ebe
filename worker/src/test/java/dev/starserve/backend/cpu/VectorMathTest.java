package dev.starserve.backend.cpu;

import static dev.starserve.backend.cpu.VectorMath.F;
import static dev.starserve.backend.cpu.VectorMath.L;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

/**
 * {@link VectorMath} against scalar twins written with plain float arithmetic and {@link Math#fma}
 * (the same operations in the same order, so the same bits: what makes the vector code independent
 * of the JIT, whose Java fallback runs exactly such scalar operations), and against the float64
 * definitions for accuracy.
 */
class VectorMathTest {

  /** The scalar twin of {@link VectorMath#exp}, one lane. */
  private static float expTwin(float x) {
    if (Float.isNaN(x)) {
      return x;
    }
    if (x < VectorMath.EXP_MIN) {
      return 0f;
    }
    if (x > VectorMath.EXP_MAX) {
      return Float.POSITIVE_INFINITY;
    }
    float n = Math.fma(x, VectorMath.LOG2E, VectorMath.ROUND) - VectorMath.ROUND;
    float r = Math.fma(n, -VectorMath.LN2_HI, x);
    r = Math.fma(n, -VectorMath.LN2_LO, r);
    float p = Math.fma(r, VectorMath.P0, VectorMath.P1);
    p = Math.fma(p, r, VectorMath.P2);
    p = Math.fma(p, r, VectorMath.P3);
    p = Math.fma(p, r, VectorMath.P4);
    p = Math.fma(p, r, VectorMath.P5);
    float y = Math.fma(p, r * r, r) + 1f;
    return Float.intBitsToFloat(Float.floatToRawIntBits(y) + ((int) n << 23));
  }

  /** The scalar twin of {@link VectorMath#sum}: lane i with lane i + half, halving. */
  private static float sumTwin(float[] lanes) {
    float[] s = lanes.clone();
    for (int half = s.length / 2; half >= 1; half /= 2) {
      for (int i = 0; i < half; i++) {
        s[i] = s[i] + s[i + half];
      }
    }
    return s[0];
  }

  private static float[] expOfVectors(float[] x) {
    float[] out = new float[x.length];
    for (int i = 0; i < x.length; i += L) {
      VectorMath.exp(FloatVector.fromArray(F, x, i)).intoArray(out, i);
    }
    return out;
  }

  private static float[] inputs() {
    Random random = new Random(20261129);
    float[] special = {
      0f,
      -0f,
      1f,
      -1f,
      Float.MIN_VALUE,
      -Float.MIN_VALUE,
      Float.NaN,
      Float.POSITIVE_INFINITY,
      Float.NEGATIVE_INFINITY,
      VectorMath.EXP_MIN,
      Math.nextDown(VectorMath.EXP_MIN),
      Math.nextUp(VectorMath.EXP_MIN),
      VectorMath.EXP_MAX,
      Math.nextUp(VectorMath.EXP_MAX),
      Math.nextDown(VectorMath.EXP_MAX),
      (float) (Math.log(2) / 2), // the ends of the polynomial's range
      (float) (-Math.log(2) / 2),
      -104f,
      -1e30f,
      1e30f
    };
    int n = 200_000;
    float[] x = new float[n + L * ((special.length + L - 1) / L)];
    System.arraycopy(special, 0, x, 0, special.length);
    for (int i = special.length; i < x.length; i++) {
      x[i] =
          switch (i % 3) {
            case 0 -> (float) (random.nextDouble() * 200 - 100); // the whole range and beyond
            case 1 -> (float) (-random.nextDouble() * 30); // softmax: x − max ≤ 0
            default -> (float) (random.nextGaussian() * 1e-3); // near zero
          };
    }
    return x;
  }

  @Test
  void expGivesTheSameBitsAsItsScalarTwin() {
    float[] x = inputs();
    float[] got = expOfVectors(x);
    for (int i = 0; i < x.length; i++) {
      assertEquals(
          Float.floatToRawIntBits(expTwin(x[i])),
          Float.floatToRawIntBits(got[i]),
          "exp(" + x[i] + ")");
    }
  }

  @Test
  void expIsWithinTwoUlpsOfTheExactValueAndSaturatesOutsideItsRange() {
    float[] x = inputs();
    float[] got = expOfVectors(x);
    double worst = 0;
    for (int i = 0; i < x.length; i++) {
      float v = x[i];
      if (Float.isNaN(v)) {
        assertTrue(Float.isNaN(got[i]), "exp(NaN)");
      } else if (v < VectorMath.EXP_MIN) {
        assertEquals(0f, got[i], 0f, "exp(" + v + ")");
        assertEquals(0, Float.floatToRawIntBits(got[i]), "exp(" + v + ") is +0");
      } else if (v > VectorMath.EXP_MAX) {
        assertEquals(Float.POSITIVE_INFINITY, got[i], "exp(" + v + ")");
      } else {
        double exact = Math.exp(v);
        double ulps = Math.abs(got[i] - exact) / Math.ulp((float) exact);
        worst = Math.max(worst, ulps);
        assertTrue(ulps <= 2, "exp(" + v + ") = " + got[i] + ", exact " + exact + ": " + ulps);
      }
    }
    assertTrue(worst > 0, "a polynomial is never exact everywhere: the check compared something");
  }

  @Test
  void sumAddsTheLanesInItsFixedOrder() {
    Random random = new Random(7);
    float[] lanes = new float[L];
    for (int rep = 0; rep < 10_000; rep++) {
      double exact = 0;
      double magnitude = 0;
      for (int i = 0; i < L; i++) {
        // Mixed magnitudes, so that a different order would round differently.
        lanes[i] = (float) (random.nextGaussian() * Math.pow(10, random.nextInt(7) - 3));
        exact += lanes[i];
        magnitude += Math.abs(lanes[i]);
      }
      float got = VectorMath.sum(FloatVector.fromArray(F, lanes, 0));
      assertEquals(
          Float.floatToRawIntBits(sumTwin(lanes)), Float.floatToRawIntBits(got), "rep " + rep);
      assertEquals(exact, got, 1e-6 * magnitude, "rep " + rep);
    }
  }
}
