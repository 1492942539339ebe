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
   * {@code o[dst + c] = scale · Σ_j p[j] · v[slot(j)·kvDim + off + c]} for c in {@code [0, hd)}:
   * attention's weighted sum of value rows, positions {@code 0..len-1} read through the block table
   * from block {@code b0} on (position j in block {@code table[b0 + j / bs]}). The output stays in
   * registers over all positions, {@code 8L} dimensions at a time (an axpy per position would load
   * and store it once per position; eight accumulators are the FMA chains in flight that hide the
   * FMA latency, since each is updated once per position).
   */
  static void weightedSum(
      float[] p,
      int len,
      int[] table,
      int b0,
      int bs,
      int kvDim,
      int off,
      float[] v,
      float scale,
      float[] o,
      int dst,
      int hd) {
    int c = 0;
    for (; c + 8 * L <= hd; c += 8 * L) {
      weightedRows8(p, len, table, b0, bs, kvDim, off + c, v, scale, o, dst + c);
    }
    for (; c + 4 * L <= hd; c += 4 * L) {
      weightedRows4(p, len, table, b0, bs, kvDim, off + c, v, scale, o, dst + c);
    }
    for (; c + L <= hd; c += L) {
      weightedRows1(p, len, table, b0, bs, kvDim, off + c, v, scale, o, dst + c);
    }
    for (; c < hd; c++) {
      float a = 0;
      for (int b = b0, j = 0; j < len; b++) {
        int row = table[b] * bs * kvDim + off + c;
        for (int end = Math.min(len, j + bs); j < end; j++, row += kvDim) {
          a += p[j] * v[row];
        }
      }
      o[dst + c] = a * scale;
    }
  }

  private static void weightedRows8(
      float[] p,
      int len,
      int[] table,
      int b0,
      int bs,
      int kvDim,
      int off,
      float[] v,
      float scale,
      float[] o,
      int dst) {
    FloatVector a0 = FloatVector.zero(F);
    FloatVector a1 = FloatVector.zero(F);
    FloatVector a2 = FloatVector.zero(F);
    FloatVector a3 = FloatVector.zero(F);
    FloatVector a4 = FloatVector.zero(F);
    FloatVector a5 = FloatVector.zero(F);
    FloatVector a6 = FloatVector.zero(F);
    FloatVector a7 = FloatVector.zero(F);
    for (int b = b0, j = 0; j < len; b++) {
      int row = table[b] * bs * kvDim + off;
      for (int end = Math.min(len, j + bs); j < end; j++, row += kvDim) {
        FloatVector w = FloatVector.broadcast(F, p[j]);
        a0 = FloatVector.fromArray(F, v, row).fma(w, a0);
        a1 = FloatVector.fromArray(F, v, row + L).fma(w, a1);
        a2 = FloatVector.fromArray(F, v, row + 2 * L).fma(w, a2);
        a3 = FloatVector.fromArray(F, v, row + 3 * L).fma(w, a3);
        a4 = FloatVector.fromArray(F, v, row + 4 * L).fma(w, a4);
        a5 = FloatVector.fromArray(F, v, row + 5 * L).fma(w, a5);
        a6 = FloatVector.fromArray(F, v, row + 6 * L).fma(w, a6);
        a7 = FloatVector.fromArray(F, v, row + 7 * L).fma(w, a7);
      }
    }
    a0.mul(scale).intoArray(o, dst);
    a1.mul(scale).intoArray(o, dst + L);
    a2.mul(scale).intoArray(o, dst + 2 * L);
    a3.mul(scale).intoArray(o, dst + 3 * L);
    a4.mul(scale).intoArray(o, dst + 4 * L);
    a5.mul(scale).intoArray(o, dst + 5 * L);
    a6.mul(scale).intoArray(o, dst + 6 * L);
    a7.mul(scale).intoArray(o, dst + 7 * L);
  }

  private static void weightedRows4(
      float[] p,
      int len,
      int[] table,
      int b0,
      int bs,
      int kvDim,
      int off,
      float[] v,
      float scale,
      float[] o,
      int dst) {
    FloatVector a0 = FloatVector.zero(F);
    FloatVector a1 = FloatVector.zero(F);
    FloatVector a2 = FloatVector.zero(F);
    FloatVector a3 = FloatVector.zero(F);
    for (int b = b0, j = 0; j < len; b++) {
      int row = table[b] * bs * kvDim + off;
      for (int end = Math.min(len, j + bs); j < end; j++, row += kvDim) {
        FloatVector w = FloatVector.broadcast(F, p[j]);
        a0 = FloatVector.fromArray(F, v, row).fma(w, a0);
        a1 = FloatVector.fromArray(F, v, row + L).fma(w, a1);
        a2 = FloatVector.fromArray(F, v, row + 2 * L).fma(w, a2);
        a3 = FloatVector.fromArray(F, v, row + 3 * L).fma(w, a3);
      }
    }
    a0.mul(scale).intoArray(o, dst);
    a1.mul(scale).intoArray(o, dst + L);
    a2.mul(scale).intoArray(o, dst + 2 * L);
    a3.mul(scale).intoArray(o, dst + 3 * L);
  }

  private static void weightedRows1(
      float[] p,
      int len,
      int[] table,
      int b0,
      int bs,
      int kvDim,
      int off,
      float[] v,
      float scale,
      float[] o,
      int dst) {
    FloatVector a = FloatVector.zero(F);
    for (int b = b0, j = 0; j < len; b++) {
      int row = table[b] * bs * kvDim + off;
      for (int end = Math.min(len, j + bs); j < end; j++, row += kvDim) {
        a = FloatVector.fromArray(F, v, row).fma(FloatVector.broadcast(F, p[j]), a);
      }
    }
    a.mul(scale).intoArray(o, dst);
  }

  /**
   * {@code s[j] = scale · q · k(j)} for positions {@code 0..len-1}, the key rows read through the
   * block table ({@code k(j)} at {@code slot(j)·kvDim + off}); returns {@code max_j s[j]}. The
   * position loop is inside so that C2 compiles it as one loop (a dot method called per position is
   * too large to inline).
   */
  static float scores(
      float[] x,
      int q,
      int len,
      int[] table,
      int bs,
      int kvDim,
      int off,
      float[] k,
      float scale,
      float[] s,
      int hd) {
    int bound2 = hd / (2 * L) * (2 * L);
    float max = Float.NEGATIVE_INFINITY;
    for (int b = 0, j = 0; j < len; b++) {
      int row = table[b] * bs * kvDim + off;
      for (int end = Math.min(len, j + bs); j < end; j++, row += kvDim) {
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = FloatVector.zero(F);
        int c = 0;
        for (; c < bound2; c += 2 * L) {
          a0 = FloatVector.fromArray(F, x, q + c).fma(FloatVector.fromArray(F, k, row + c), a0);
          a1 =
              FloatVector.fromArray(F, x, q + c + L)
                  .fma(FloatVector.fromArray(F, k, row + c + L), a1);
        }
        float d = VectorMath.sum(a0.add(a1));
        for (; c < hd; c++) {
          d += x[q + c] * k[row + c];
        }
        float v = d * scale;
        s[j] = v;
        max = Math.max(max, v);
      }
    }
    return max;
  }
}
