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
 * Dot products over f16 weights, in the even/odd scheme of {@link Bf16Tiles} (activations in {@link
 * VectorKernels#permuteForBf16} order). A half {@code h} widens exactly as {@code float(bits((h &
 * 0x7fff) << 13)) · 2^112} with the sign moved to bit 31: right for normal and subnormal halves
 * (inf and NaN weights are not supported).
 *
 * <p>NOTE: one row and one token at a time (the widening is written out in the loop so that C2
 * inlines every vector call); bf16 is the dtype the fast path is built for.
 */
final class F16Tiles {
  private F16Tiles() {}

  private static final VectorSpecies<Integer> I = VectorKernels.I;
  private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
  private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);
  private static final float TWO_POW_112 = Float.intBitsToFloat(0x77800000);

  /** {@code Σ_c x[t·in + c] · w[r·in + c]}. */
  static float dot(float[] xp, float[] x, int t, int in, MemorySegment w, int r) {
    int block = 2 * L;
    int end = in / block * block;
    long w0 = (long) r * in * 2;
    int x0 = t * in;
    FloatVector acc = FloatVector.zero(F);
    for (int c = 0; c < end; c += block) {
      IntVector i = IntVector.fromMemorySegment(I, w, w0 + c * 2L, LE);
      IntVector lo = i.and(0xffff);
      IntVector hi = i.lanewise(VectorOperators.LSHR, 16);
      FloatVector even =
          lo.and(0x7fff)
              .lanewise(VectorOperators.LSHL, 13)
              .reinterpretAsFloats()
              .mul(TWO_POW_112)
              .reinterpretAsInts()
              .or(lo.and(0x8000).lanewise(VectorOperators.LSHL, 16))
              .reinterpretAsFloats();
      FloatVector odd =
          hi.and(0x7fff)
              .lanewise(VectorOperators.LSHL, 13)
              .reinterpretAsFloats()
              .mul(TWO_POW_112)
              .reinterpretAsInts()
              .or(hi.and(0x8000).lanewise(VectorOperators.LSHL, 16))
              .reinterpretAsFloats();
      acc = FloatVector.fromArray(F, xp, x0 + c).fma(even, acc);
      acc = FloatVector.fromArray(F, xp, x0 + c + L).fma(odd, acc);
    }
    float s = acc.reduceLanes(VectorOperators.ADD);
    for (int c = end; c < in; c++) {
      s += x[x0 + c] * Float.float16ToFloat(w.getAtIndex(I16, w0 / 2 + c));
    }
    return s;
  }
}
