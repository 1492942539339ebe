package dev.starserve.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector math whose results do not depend on how far the JIT has compiled the calling code: an
 * exponential and a sum of lanes built only from IEEE basic operations (add, multiply, fused
 * multiply-add, compare, exact conversions and bit operations), which give the same bits whether
 * the Vector API runs compiled by C2 or in its Java fallback.
 *
 * <p>NOTE: why not {@code lanewise(EXP)}, {@code lanewise(TANH)} and {@code reduceLanes(ADD)}.
 * Compiled, the first two call the JIT's vector math library and the third adds lanes in a tree;
 * before C2 has compiled a kernel (a process's first requests, or code the JIT gave up on) the
 * fallback calls {@link Math#exp} lane by lane and adds lanes in order. The last bits of logits
 * then depended on the JIT's state, and a seeded request sampled differently after a restart (1-2
 * of 32 requests of 64 tokens) or right after start-up.
 */
public final class VectorMath {
  private VectorMath() {}

  static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
  static final int L = F.length();

  static final float LOG2E = 1.44269504088896341f;
  static final float ROUND = 12582912f; // 1.5 · 2^23: x + ROUND − ROUND rounds x to an int
  static final float LN2_HI = 0.693359375f; // ln 2 = LN2_HI + LN2_LO, LN2_HI with 9 bits
  static final float LN2_LO = -2.12194440e-4f;
  static final float EXP_MIN = -87f; // e^-87 ≈ 1.6e-38, still a normal float
  static final float EXP_MAX = 88.3762626647949f; // e^EXP_MAX ≈ 2^127.5
  // e^r ≈ 1 + r + r²·(P0·r⁵ + … + P5) on |r| ≤ ln2 / 2 (Cephes' expf)
  static final float P0 = 1.9875691500e-4f;
  static final float P1 = 1.3981999507e-3f;
  static final float P2 = 8.3334519073e-3f;
  static final float P3 = 4.1665795894e-2f;
  static final float P4 = 1.6666665459e-1f;
  static final float P5 = 5.0000001201e-1f;

  // Lane partners of a sum by halves: lane i with lane i ^ k (the identity where k ≥ L). 64 float
  // lanes is the widest vector there is (2048-bit SVE).
  private static final VectorShuffle<Float> X32 = partner(32);
  private static final VectorShuffle<Float> X16 = partner(16);
  private static final VectorShuffle<Float> X8 = partner(8);
  private static final VectorShuffle<Float> X4 = partner(4);
  private static final VectorShuffle<Float> X2 = partner(2);
  private static final VectorShuffle<Float> X1 = partner(1);

  private static VectorShuffle<Float> partner(int k) {
    return VectorShuffle.fromOp(F, i -> k < L ? i ^ k : i);
  }

  /**
   * {@code e^x} in every lane, within 2 ulps of the exact value for {@code −87 ≤ x ≤ 88.376}: 0
   * below (including −∞), +∞ above, NaN for NaN. {@code x = n·ln2 + r} with {@code n} the nearest
   * integer to {@code x / ln2}, a polynomial for {@code e^r}, and {@code n} added to its exponent.
   */
  public static FloatVector exp(FloatVector x) {
    FloatVector xc = x.max(EXP_MIN).min(EXP_MAX);
    FloatVector n = xc.fma(LOG2E, ROUND).sub(ROUND);
    FloatVector r = n.fma(FloatVector.broadcast(F, -LN2_HI), xc);
    r = n.fma(FloatVector.broadcast(F, -LN2_LO), r);
    FloatVector p = r.fma(P0, P1);
    p = p.fma(r, FloatVector.broadcast(F, P2));
    p = p.fma(r, FloatVector.broadcast(F, P3));
    p = p.fma(r, FloatVector.broadcast(F, P4));
    p = p.fma(r, FloatVector.broadcast(F, P5));
    FloatVector y = p.fma(r.mul(r), r).add(1f);
    IntVector shift =
        ((IntVector) n.convert(VectorOperators.F2I, 0)).lanewise(VectorOperators.LSHL, 23);
    FloatVector e = y.reinterpretAsInts().add(shift).reinterpretAsFloats();
    e = e.blend(0f, x.compare(VectorOperators.LT, EXP_MIN));
    e = e.blend(Float.POSITIVE_INFINITY, x.compare(VectorOperators.GT, EXP_MAX));
    return e.blend(x, x.test(VectorOperators.IS_NAN));
  }

  /**
   * The sum of the lanes, always in the same order: lane i plus lane i + L/2, then halves again
   * ({@code ((v0 + v4) + (v2 + v6)) + ((v1 + v5) + (v3 + v7))} for eight lanes).
   */
  public static float sum(FloatVector v) {
    FloatVector s = v;
    if (L > 32) {
      s = s.add(s.rearrange(X32));
    }
    if (L > 16) {
      s = s.add(s.rearrange(X16));
    }
    if (L > 8) {
      s = s.add(s.rearrange(X8));
    }
    if (L > 4) {
      s = s.add(s.rearrange(X4));
    }
    if (L > 2) {
      s = s.add(s.rearrange(X2));
    }
    if (L > 1) {
      s = s.add(s.rearrange(X1));
    }
    return s.lane(0);
  }
}
