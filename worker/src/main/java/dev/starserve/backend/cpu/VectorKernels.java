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
   * 0..n-1} and weight rows {@code r0..r1-1}.
   *
   * <p>Register tiling: four weight rows at a time, each with four tokens (16 accumulators: every
   * weight vector is widened once and used four times, every activation vector used four times) or,
   * for the last {@code n % 4} tokens and single-token decoding, one token (four independent
   * accumulators hide the FMA latency).
   *
   * <p>bf16 and f16 weights need {@code xp}, the activations in {@link #permuteForBf16} order; f32
   * weights read {@code x}.
   */
  static void linearRows(
      float[] x,
      float[] xp,
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
    int r = r0;
    switch (dt) {
      case BF16 -> {
        int tEnd = n / 4 * 4;
        // Tokens in groups of four, one weight row at a time (the row stays in L1 while every
        // group passes over it).
        for (int rr = r0; rr < r1; rr++) {
          for (int t = 0; t < tEnd; t += 4) {
            Bf16Tiles.tile1x4(xp, x, t, in, w, rr, out, outStride);
          }
        }
        // The remaining tokens (all of them when decoding), one row at a time.
        for (; r < r1; r++) {
          for (int t = tEnd; t < n; t++) {
            out[t * outStride + r] = Bf16Tiles.dot(xp, x, t, in, w, r);
          }
        }
      }
      case F32 -> {
        for (; r + 4 <= r1; r += 4) {
          int t = 0;
          for (; t + 4 <= n; t += 4) {
            tile4x4F32(x, t, in, w, r, out, outStride);
          }
          for (; t < n; t++) {
            tile4x1F32(x, t, in, w, r, out, outStride);
          }
        }
        for (; r < r1; r++) {
          for (int t = 0; t < n; t++) {
            out[t * outStride + r] = dot(x, t * in, dt, w, (long) r * in, in);
          }
        }
      }
      case F16 -> {
        for (; r < r1; r++) {
          for (int t = 0; t < n; t++) {
            out[t * outStride + r] = F16Tiles.dot(xp, x, t, in, w, r);
          }
        }
      }
    }
    if (bias != null) {
      for (int t = 0; t < n; t++) {
        for (int rr = r0; rr < r1; rr++) {
          out[t * outStride + rr] += get(bt, bias, rr);
        }
      }
    }
  }

  /**
   * Reorders each row of {@code x [n × in]} for the bf16 kernels: within every block of {@code 2L}
   * values, the even-indexed ones first, then the odd-indexed ones; the tail ({@code in mod 2L})
   * stays in place.
   *
   * <pre>
   * x  block: x0 x1 x2 x3 … x(2L-1)
   * xp block: x0 x2 x4 … x(2L-2) | x1 x3 … x(2L-1)
   * </pre>
   *
   * One 32-bit lane of a bf16 weight load holds elements 2j (low half) and 2j+1 (high half), so the
   * even and odd weights widen with one shift and one mask, with no cross-lane shuffle.
   */
  static void permuteForBf16(float[] x, int n, int in, float[] xp) {
    int block = 2 * L;
    int blocks = in / block;
    for (int t = 0; t < n; t++) {
      int base = t * in;
      for (int b = 0; b < blocks; b++) {
        int o = base + b * block;
        for (int j = 0; j < L; j++) {
          xp[o + j] = x[o + 2 * j];
          xp[o + L + j] = x[o + 2 * j + 1];
        }
      }
      System.arraycopy(x, base + blocks * block, xp, base + blocks * block, in - blocks * block);
    }
  }

  private static void tile4x4F32(
      float[] x, int t, int in, MemorySegment w, int r, float[] out, int outStride) {
    int bound = F.loopBound(in);
    long w0 = (long) r * in;
    long w1 = w0 + in;
    long w2 = w1 + in;
    long w3 = w2 + in;
    int x0 = t * in;
    int x1 = x0 + in;
    int x2 = x1 + in;
    int x3 = x2 + in;
    FloatVector a00 = FloatVector.zero(F), a01 = FloatVector.zero(F);
    FloatVector a02 = FloatVector.zero(F), a03 = FloatVector.zero(F);
    FloatVector a10 = FloatVector.zero(F), a11 = FloatVector.zero(F);
    FloatVector a12 = FloatVector.zero(F), a13 = FloatVector.zero(F);
    FloatVector a20 = FloatVector.zero(F), a21 = FloatVector.zero(F);
    FloatVector a22 = FloatVector.zero(F), a23 = FloatVector.zero(F);
    FloatVector a30 = FloatVector.zero(F), a31 = FloatVector.zero(F);
    FloatVector a32 = FloatVector.zero(F), a33 = FloatVector.zero(F);
    int c = 0;
    for (; c < bound; c += L) {
      FloatVector v0 = FloatVector.fromArray(F, x, x0 + c);
      FloatVector v1 = FloatVector.fromArray(F, x, x1 + c);
      FloatVector v2 = FloatVector.fromArray(F, x, x2 + c);
      FloatVector v3 = FloatVector.fromArray(F, x, x3 + c);
      FloatVector k = f32(w, w0 + c);
      a00 = v0.fma(k, a00);
      a01 = v1.fma(k, a01);
      a02 = v2.fma(k, a02);
      a03 = v3.fma(k, a03);
      k = f32(w, w1 + c);
      a10 = v0.fma(k, a10);
      a11 = v1.fma(k, a11);
      a12 = v2.fma(k, a12);
      a13 = v3.fma(k, a13);
      k = f32(w, w2 + c);
      a20 = v0.fma(k, a20);
      a21 = v1.fma(k, a21);
      a22 = v2.fma(k, a22);
      a23 = v3.fma(k, a23);
      k = f32(w, w3 + c);
      a30 = v0.fma(k, a30);
      a31 = v1.fma(k, a31);
      a32 = v2.fma(k, a32);
      a33 = v3.fma(k, a33);
    }
    float s00 = a00.reduceLanes(VectorOperators.ADD), s01 = a01.reduceLanes(VectorOperators.ADD);
    float s02 = a02.reduceLanes(VectorOperators.ADD), s03 = a03.reduceLanes(VectorOperators.ADD);
    float s10 = a10.reduceLanes(VectorOperators.ADD), s11 = a11.reduceLanes(VectorOperators.ADD);
    float s12 = a12.reduceLanes(VectorOperators.ADD), s13 = a13.reduceLanes(VectorOperators.ADD);
    float s20 = a20.reduceLanes(VectorOperators.ADD), s21 = a21.reduceLanes(VectorOperators.ADD);
    float s22 = a22.reduceLanes(VectorOperators.ADD), s23 = a23.reduceLanes(VectorOperators.ADD);
    float s30 = a30.reduceLanes(VectorOperators.ADD), s31 = a31.reduceLanes(VectorOperators.ADD);
    float s32 = a32.reduceLanes(VectorOperators.ADD), s33 = a33.reduceLanes(VectorOperators.ADD);
    for (; c < in; c++) {
      float k0 = w.getAtIndex(F32, w0 + c);
      float k1 = w.getAtIndex(F32, w1 + c);
      float k2 = w.getAtIndex(F32, w2 + c);
      float k3 = w.getAtIndex(F32, w3 + c);
      float v0 = x[x0 + c];
      float v1 = x[x1 + c];
      float v2 = x[x2 + c];
      float v3 = x[x3 + c];
      s00 += v0 * k0;
      s01 += v1 * k0;
      s02 += v2 * k0;
      s03 += v3 * k0;
      s10 += v0 * k1;
      s11 += v1 * k1;
      s12 += v2 * k1;
      s13 += v3 * k1;
      s20 += v0 * k2;
      s21 += v1 * k2;
      s22 += v2 * k2;
      s23 += v3 * k2;
      s30 += v0 * k3;
      s31 += v1 * k3;
      s32 += v2 * k3;
      s33 += v3 * k3;
    }
    int o0 = t * outStride + r;
    int o1 = o0 + outStride;
    int o2 = o1 + outStride;
    int o3 = o2 + outStride;
    out[o0] = s00;
    out[o1] = s01;
    out[o2] = s02;
    out[o3] = s03;
    out[o0 + 1] = s10;
    out[o1 + 1] = s11;
    out[o2 + 1] = s12;
    out[o3 + 1] = s13;
    out[o0 + 2] = s20;
    out[o1 + 2] = s21;
    out[o2 + 2] = s22;
    out[o3 + 2] = s23;
    out[o0 + 3] = s30;
    out[o1 + 3] = s31;
    out[o2 + 3] = s32;
    out[o3 + 3] = s33;
  }

  private static void tile4x1F32(
      float[] x, int t, int in, MemorySegment w, int r, float[] out, int outStride) {
    int bound = F.loopBound(in);
    long w0 = (long) r * in;
    long w1 = w0 + in;
    long w2 = w1 + in;
    long w3 = w2 + in;
    int x0 = t * in;
    FloatVector a0 = FloatVector.zero(F);
    FloatVector a1 = FloatVector.zero(F);
    FloatVector a2 = FloatVector.zero(F);
    FloatVector a3 = FloatVector.zero(F);
    int c = 0;
    for (; c < bound; c += L) {
      FloatVector v = FloatVector.fromArray(F, x, x0 + c);
      a0 = v.fma(f32(w, w0 + c), a0);
      a1 = v.fma(f32(w, w1 + c), a1);
      a2 = v.fma(f32(w, w2 + c), a2);
      a3 = v.fma(f32(w, w3 + c), a3);
    }
    float s0 = a0.reduceLanes(VectorOperators.ADD);
    float s1 = a1.reduceLanes(VectorOperators.ADD);
    float s2 = a2.reduceLanes(VectorOperators.ADD);
    float s3 = a3.reduceLanes(VectorOperators.ADD);
    for (; c < in; c++) {
      float v = x[x0 + c];
      s0 += v * w.getAtIndex(F32, w0 + c);
      s1 += v * w.getAtIndex(F32, w1 + c);
      s2 += v * w.getAtIndex(F32, w2 + c);
      s3 += v * w.getAtIndex(F32, w3 + c);
    }
    int o = t * outStride + r;
    out[o] = s0;
    out[o + 1] = s1;
    out[o + 2] = s2;
    out[o + 3] = s3;
  }

  private static FloatVector f32(MemorySegment w, long e) {
    return FloatVector.fromMemorySegment(F, w, e * 4, LE);
  }

  /** {@code Σ x[xi..xi+len) · w[wi..wi+len)} with w widened from {@code dt}. */
  static float dot(float[] x, int xi, DType dt, MemorySegment w, long wi, int len) {
    FloatVector acc = FloatVector.zero(F);
    int bound = F.loopBound(len);
    int c = 0;
    for (; c < bound; c += L) {
      acc = FloatVector.fromArray(F, x, xi + c).fma(load(dt, w, wi + c), acc);
    }
    float s = acc.reduceLanes(VectorOperators.ADD);
    for (; c < len; c++) {
      s += x[xi + c] * get(dt, w, wi + c);
    }
    return s;
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
