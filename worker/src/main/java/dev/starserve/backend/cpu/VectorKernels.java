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

  /**
   * {@code out[t·outStride + r] = Σ_c x[t·in + c] · w[r·in + c] + bias[r]} for tokens {@code
   * 0..n-1} and weight rows {@code r0..r1-1}. Four tokens share each loaded weight vector.
   */
  static void linearRows(
      float[] x,
      int n,
      int in,
      DType dt,
      MemorySegment w,
      DType bt,
      MemorySegment bias,
      float[] out,
      int outStride,
      int r0,
      int r1) {
    int bound = F.loopBound(in);
    for (int r = r0; r < r1; r++) {
      long wRow = (long) r * in;
      float b = bias == null ? 0f : get(bt, bias, r);
      int t = 0;
      for (; t + 4 <= n; t += 4) {
        int x0 = t * in;
        int x1 = x0 + in;
        int x2 = x1 + in;
        int x3 = x2 + in;
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = FloatVector.zero(F);
        FloatVector a2 = FloatVector.zero(F);
        FloatVector a3 = FloatVector.zero(F);
        int c = 0;
        for (; c < bound; c += L) {
          FloatVector wv = load(dt, w, wRow + c);
          a0 = FloatVector.fromArray(F, x, x0 + c).fma(wv, a0);
          a1 = FloatVector.fromArray(F, x, x1 + c).fma(wv, a1);
          a2 = FloatVector.fromArray(F, x, x2 + c).fma(wv, a2);
          a3 = FloatVector.fromArray(F, x, x3 + c).fma(wv, a3);
        }
        float s0 = a0.reduceLanes(VectorOperators.ADD);
        float s1 = a1.reduceLanes(VectorOperators.ADD);
        float s2 = a2.reduceLanes(VectorOperators.ADD);
        float s3 = a3.reduceLanes(VectorOperators.ADD);
        for (; c < in; c++) {
          float wv = get(dt, w, wRow + c);
          s0 += x[x0 + c] * wv;
          s1 += x[x1 + c] * wv;
          s2 += x[x2 + c] * wv;
          s3 += x[x3 + c] * wv;
        }
        out[t * outStride + r] = s0 + b;
        out[(t + 1) * outStride + r] = s1 + b;
        out[(t + 2) * outStride + r] = s2 + b;
        out[(t + 3) * outStride + r] = s3 + b;
      }
      for (; t < n; t++) {
        int x0 = t * in;
        FloatVector a0 = FloatVector.zero(F);
        int c = 0;
        for (; c < bound; c += L) {
          a0 = FloatVector.fromArray(F, x, x0 + c).fma(load(dt, w, wRow + c), a0);
        }
        float s0 = a0.reduceLanes(VectorOperators.ADD);
        for (; c < in; c++) {
          s0 += x[x0 + c] * get(dt, w, wRow + c);
        }
        out[t * outStride + r] = s0 + b;
      }
    }
  }

  /** {@code Σ a[ai..ai+len) · b[bi..bi+len)}. */
  static float dot(float[] a, int ai, float[] b, int bi, int len) {
    FloatVector acc = FloatVector.zero(F);
    int bound = F.loopBound(len);
    int c = 0;
    for (; c < bound; c += L) {
      acc = FloatVector.fromArray(F, a, ai + c).fma(FloatVector.fromArray(F, b, bi + c), acc);
    }
    float s = acc.reduceLanes(VectorOperators.ADD);
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
