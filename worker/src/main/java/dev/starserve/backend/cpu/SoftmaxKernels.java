package dev.starserve.backend.cpu;

import static dev.starserve.backend.cpu.VectorKernels.F;
import static dev.starserve.backend.cpu.VectorKernels.L;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

/**
 * The exponentials of attention's softmax, vectorized: {@code e^x} for {@code x ≤ 0} by range
 * reduction to {@code x = k·ln 2 + r}, {@code |r| ≤ ln 2 / 2}, a degree-7 Taylor polynomial of
 * {@code e^r} (truncation below 3e-9 relative) and {@code 2^k} built in the exponent bits. Within a
 * few float ulps of {@code Math.exp}; arguments below −87 give {@code e^−87} (about 1.6e-38), not
 * 0, which no softmax sum can tell apart.
 *
 * <p>NOTE: a scalar {@code Math.exp} per score was most of attention's time in a 512-token prefill.
 */
final class SoftmaxKernels {
  private SoftmaxKernels() {}

  private static final float LOG2E = 1.44269504088896341f;
  private static final float LN2_HI = 0.693145751953125f; // ln 2, top 16 bits: k·LN2_HI is exact
  private static final float LN2_LO = 1.428606765330187045e-6f; // ln 2 − LN2_HI
  private static final float ROUNDER = 12582912f; // 1.5·2^23: adding it rounds to an integer
  private static final int ROUNDER_BITS = Float.floatToRawIntBits(ROUNDER);
  private static final float MIN_ARG = -87f;

  /**
   * {@code s[j] = e^(s[j] − max)} for {@code j < len}, every {@code s[j] ≤ max}; returns the sum of
   * the results (lanes summed in a fixed order, so the same row always gives the same sum).
   */
  static float expShiftedInPlace(float[] s, int len, float max) {
    int bound = F.loopBound(len);
    FloatVector acc = FloatVector.zero(F);
    int j = 0;
    for (; j < bound; j += L) {
      FloatVector e = exp(FloatVector.fromArray(F, s, j).sub(max));
      e.intoArray(s, j);
      acc = acc.add(e);
    }
    float sum = acc.reduceLanes(VectorOperators.ADD);
    for (; j < len; j++) {
      float e = exp(s[j] - max);
      s[j] = e;
      sum += e;
    }
    return sum;
  }

  private static final FloatVector V_LN2_HI = FloatVector.broadcast(F, -LN2_HI);
  private static final FloatVector V_LN2_LO = FloatVector.broadcast(F, -LN2_LO);
  private static final FloatVector C7 = FloatVector.broadcast(F, 1f / 5040);
  private static final FloatVector C6 = FloatVector.broadcast(F, 1f / 720);
  private static final FloatVector C5 = FloatVector.broadcast(F, 1f / 120);
  private static final FloatVector C4 = FloatVector.broadcast(F, 1f / 24);
  private static final FloatVector C3 = FloatVector.broadcast(F, 1f / 6);
  private static final FloatVector C2 = FloatVector.broadcast(F, 0.5f);
  private static final FloatVector ONE = FloatVector.broadcast(F, 1f);

  /** {@code e^x} lane by lane, for {@code x ≤ 0} (see the class comment). */
  static FloatVector exp(FloatVector x) {
    x = x.max(MIN_ARG);
    FloatVector t = x.fma(LOG2E, ROUNDER); // ROUNDER + round(x·log2 e)
    FloatVector k = t.sub(ROUNDER);
    FloatVector r = k.fma(V_LN2_HI, x);
    r = k.fma(V_LN2_LO, r);
    FloatVector p = r.fma(C7, C6);
    p = p.fma(r, C5);
    p = p.fma(r, C4);
    p = p.fma(r, C3);
    p = p.fma(r, C2);
    p = p.fma(r, ONE);
    p = p.fma(r, ONE);
    IntVector ki = t.reinterpretAsInts().sub(ROUNDER_BITS);
    FloatVector twoK = ki.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
    return p.mul(twoK);
  }

  /** The scalar twin of {@link #exp(FloatVector)}, same steps and constants (the loop tails). */
  static float exp(float x) {
    x = Math.max(x, MIN_ARG);
    float t = Math.fma(x, LOG2E, ROUNDER);
    float k = t - ROUNDER;
    float r = Math.fma(k, -LN2_HI, x);
    r = Math.fma(k, -LN2_LO, r);
    float p = Math.fma(r, 1f / 5040, 1f / 720);
    p = Math.fma(p, r, 1f / 120);
    p = Math.fma(p, r, 1f / 24);
    p = Math.fma(p, r, 1f / 6);
    p = Math.fma(p, r, 0.5f);
    p = Math.fma(p, r, 1f);
    p = Math.fma(p, r, 1f);
    int ki = Float.floatToRawIntBits(t) - ROUNDER_BITS;
    return p * Float.intBitsToFloat((ki + 127) << 23);
  }
}
