package dev.starserve.backend.cpu;

import dev.starserve.checkpoint.DType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API inner loops. Weights are read in their stored dtype straight from the mapped
 * checkpoint and widened to float32 in registers: bf16 by a 16-bit shift, f16 by moving the
 * exponent and mantissa into place and rescaling by 2^112 (exact for normal and subnormal halves;
 * inf/NaN weights are not supported).
 */
final class VectorKernels {
  private VectorKernels() {}

  static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
  static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
  static final VectorSpecies<Short> S =
      VectorSpecies.of(short.class, VectorShape.forBitSize(F.vectorBitSize() / 2));
  static final int L = F.length();

  private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
  private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(LE);
  private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);
  private static final float TWO_POW_112 = Float.intBitsToFloat(0x77800000);

  /** L weights starting at element {@code e} of {@code w}, widened to float. */
  static FloatVector load(DType dt, MemorySegment w, long e) {
    return switch (dt) {
      case F32 -> FloatVector.fromMemorySegment(F, w, e * 4, LE);
      case BF16 -> {
        IntVector i =
            (IntVector)
                ShortVector.fromMemorySegment(S, w, e * 2, LE)
                    .convertShape(VectorOperators.S2I, I, 0);
        yield i.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
      }
      case F16 -> {
        IntVector h =
            (IntVector)
                ShortVector.fromMemorySegment(S, w, e * 2, LE)
                    .convertShape(VectorOperators.S2I, I, 0);
        IntVector sign = h.and(0x8000).lanewise(VectorOperators.LSHL, 16);
        FloatVector mag =
            h.and(0x7fff).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(TWO_POW_112);
        yield mag.reinterpretAsInts().or(sign).reinterpretAsFloats();
      }
    };
  }

  /** One weight element widened to float (the scalar tail). */
  static float get(DType dt, MemorySegment w, long e) {
    return switch (dt) {
      case F32 -> w.getAtIndex(F32, e);
      case BF16 -> Float.intBitsToFloat((w.getAtIndex(I16, e) & 0xffff) << 16);
      case F16 -> Float.float16ToFloat(w.getAtIndex(I16, e));
    };
  }

  /** {@code Σ a[ai..ai+len) · b[bi..bi+len)}. */
  static float dot(float[] a, int ai, float[] b, int bi, int len) {
    // Four accumulators: a head-sized dot (64-128 values) is otherwise one chain of dependent FMAs.
    FloatVector a0 = FloatVector.zero(F);
    FloatVector a1 = FloatVector.zero(F);
    FloatVector a2 = FloatVector.zero(F);
    FloatVector a3 = FloatVector.zero(F);
    int bound4 = len / (4 * L) * (4 * L);
    int c = 0;
    for (; c < bound4; c += 4 * L) {
      a0 = FloatVector.fromArray(F, a, ai + c).fma(FloatVector.fromArray(F, b, bi + c), a0);
      a1 = FloatVector.fromArray(F, a, ai + c + L).fma(FloatVector.fromArray(F, b, bi + c + L), a1);
      a2 =
          FloatVector.fromArray(F, a, ai + c + 2 * L)
              .fma(FloatVector.fromArray(F, b, bi + c + 2 * L), a2);
      a3 =
          FloatVector.fromArray(F, a, ai + c + 3 * L)
              .fma(FloatVector.fromArray(F, b, bi + c + 3 * L), a3);
    }
    int bound = F.loopBound(len);
    for (; c < bound; c += L) {
      a0 = FloatVector.fromArray(F, a, ai + c).fma(FloatVector.fromArray(F, b, bi + c), a0);
    }
    float s = a0.add(a1).add(a2.add(a3)).reduceLanes(VectorOperators.ADD);
    for (; c < len; c++) {
      s += a[ai + c] * b[bi + c];
    }
    return s;
  }

  /** {@code y[yi..yi+len) += alpha · x[xi..xi+len)}. */
  static void axpy(float alpha, float[] x, int xi, float[] y, int yi, int len) {
    FloatVector av = FloatVector.broadcast(F, alpha);
    int bound = F.loopBound(len);
    int c = 0;
    for (; c < bound; c += L) {
      FloatVector.fromArray(F, x, xi + c)
          .fma(av, FloatVector.fromArray(F, y, yi + c))
          .intoArray(y, yi + c);
    }
    for (; c < len; c++) {
      y[yi + c] += alpha * x[xi + c];
    }
  }
}
