package dev.starserve.backend.cpu;

import static dev.starserve.backend.cpu.VectorKernels.F;
import static dev.starserve.backend.cpu.VectorKernels.L;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Register tiles for bf16 weights. Each step loads {@code 2L} weights as {@code L} ints and widens
 * them in place: {@code int << 16} is the even element, {@code int & 0xffff0000} the odd one. The
 * activations come pre-ordered by {@link VectorKernels#permuteForBf16} (evens, then odds, per
 * block) so both halves meet their activations lane by lane.
 */
final class Bf16Tiles {
  private Bf16Tiles() {}

  private static final VectorSpecies<Integer> I = VectorKernels.I;
  private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
  private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);
  private static final int HIGH = 0xffff0000;

  private static float bf16(MemorySegment w, long e) {
    return Float.intBitsToFloat((w.getAtIndex(I16, e) & 0xffff) << 16);
  }

  /**
   * One weight row {@code r}, four tokens from {@code t}.
   *
   * <p>NOTE: a 4-row × 4-token tile would reuse more, but C2 stops inlining the Vector API calls of
   * so large a method (its inlining budget runs out) and the vectors end up boxed, which is 10×
   * slower. 1×4 stays within the budget.
   */
  static void tile1x4(
      float[] xp, float[] x, int t, int in, MemorySegment w, int r, float[] out, int outStride) {
    int block = 2 * L;
    int end = in / block * block;
    long w0 = (long) r * in * 2;
    int x0 = t * in;
    int x1 = x0 + in;
    int x2 = x1 + in;
    int x3 = x2 + in;
    // Even and odd halves accumulate separately: eight independent FMA chains keep both FMA
    // pipes busy through the 4-cycle latency (AVX2 has 16 registers: 8 accumulators fit).
    FloatVector e0 = FloatVector.zero(F);
    FloatVector e1 = FloatVector.zero(F);
    FloatVector e2 = FloatVector.zero(F);
    FloatVector e3 = FloatVector.zero(F);
    FloatVector o0 = FloatVector.zero(F);
    FloatVector o1 = FloatVector.zero(F);
    FloatVector o2 = FloatVector.zero(F);
    FloatVector o3 = FloatVector.zero(F);
    for (int c = 0; c < end; c += block) {
      IntVector i = IntVector.fromMemorySegment(I, w, w0 + c * 2L, LE);
      FloatVector k = i.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
      e0 = FloatVector.fromArray(F, xp, x0 + c).fma(k, e0);
      e1 = FloatVector.fromArray(F, xp, x1 + c).fma(k, e1);
      e2 = FloatVector.fromArray(F, xp, x2 + c).fma(k, e2);
      e3 = FloatVector.fromArray(F, xp, x3 + c).fma(k, e3);
      k = i.and(HIGH).reinterpretAsFloats();
      o0 = FloatVector.fromArray(F, xp, x0 + c + L).fma(k, o0);
      o1 = FloatVector.fromArray(F, xp, x1 + c + L).fma(k, o1);
      o2 = FloatVector.fromArray(F, xp, x2 + c + L).fma(k, o2);
      o3 = FloatVector.fromArray(F, xp, x3 + c + L).fma(k, o3);
    }
    float s0 = e0.add(o0).reduceLanes(VectorOperators.ADD);
    float s1 = e1.add(o1).reduceLanes(VectorOperators.ADD);
    float s2 = e2.add(o2).reduceLanes(VectorOperators.ADD);
    float s3 = e3.add(o3).reduceLanes(VectorOperators.ADD);
    for (int c = end; c < in; c++) {
      float k = bf16(w, w0 / 2 + c);
      s0 += x[x0 + c] * k;
      s1 += x[x1 + c] * k;
      s2 += x[x2 + c] * k;
      s3 += x[x3 + c] * k;
    }
    out[t * outStride + r] = s0;
    out[(t + 1) * outStride + r] = s1;
    out[(t + 2) * outStride + r] = s2;
    out[(t + 3) * outStride + r] = s3;
  }

  /**
   * {@code Σ_c x[t·in + c] · w[r·in + c]}: one row, one token. NOTE: used for decoding instead of a
   * four-row tile (four interleaved row streams read DRAM slower here), and it accumulates in
   * exactly the order of {@link #tile1x4}, so a token's result does not depend on how many other
   * tokens share its step (batch invariance).
   */
  static float dot(float[] xp, float[] x, int t, int in, MemorySegment w, int r) {
    int block = 2 * L;
    int end = in / block * block;
    long w0 = (long) r * in * 2;
    int x0 = t * in;
    FloatVector e = FloatVector.zero(F);
    FloatVector o = FloatVector.zero(F);
    for (int c = 0; c < end; c += block) {
      IntVector i = IntVector.fromMemorySegment(I, w, w0 + c * 2L, LE);
      e = FloatVector.fromArray(F, xp, x0 + c).fma(even(i), e);
      o = FloatVector.fromArray(F, xp, x0 + c + L).fma(odd(i), o);
    }
    float s = e.add(o).reduceLanes(VectorOperators.ADD);
    for (int c = end; c < in; c++) {
      s += x[x0 + c] * bf16(w, w0 / 2 + c);
    }
    return s;
  }

  private static FloatVector even(IntVector i) {
    return i.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
  }

  private static FloatVector odd(IntVector i) {
    return i.and(HIGH).reinterpretAsFloats();
  }
}
