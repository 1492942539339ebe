package dev.starserve.backend.cpu;

import dev.starserve.checkpoint.Bf16;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;

/**
 * Attention's inner loops over a bf16 K/V cache held as {@code short[]}: each row is widened to
 * float32 in registers (sign-extend to int, shift left 16) and the math stays float32.
 *
 * <p>NOTE: one small method per loop, so that C2 inlines the Vector API calls into each and keeps
 * the vectors in registers; a large method with several vector loops stops being inlined and boxes
 * its vectors (about 10× slower).
 */
final class KvBf16Kernels {
  private KvBf16Kernels() {}

  /** L bf16 values {@code a[i..i+L)} widened to float. */
  private static FloatVector widen(short[] a, int i) {
    IntVector w =
        (IntVector)
            ShortVector.fromArray(VectorKernels.S, a, i)
                .convertShape(VectorOperators.S2I, VectorKernels.I, 0);
    return w.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
  }

  /** {@link VectorKernels#weightedSum} over bf16 value rows, {@code 2L} dimensions at a time. */
  static void weightedSum(
      float[] p,
      int len,
      int[] table,
      int b0,
      int bs,
      int kvDim,
      int off,
      short[] v,
      float scale,
      float[] o,
      int dst,
      int hd) {
    int l = VectorKernels.L;
    int c = 0;
    for (; c + 2 * l <= hd; c += 2 * l) {
      weightedRows2(p, len, table, b0, bs, kvDim, off + c, v, scale, o, dst + c);
    }
    for (; c < hd; c++) {
      float a = 0;
      for (int b = b0, j = 0; j < len; b++) {
        int row = table[b] * bs * kvDim + off + c;
        for (int end = Math.min(len, j + bs); j < end; j++, row += kvDim) {
          a += p[j] * Bf16.widen(v[row]);
        }
      }
      o[dst + c] = a * scale;
    }
  }

  private static void weightedRows2(
      float[] p,
      int len,
      int[] table,
      int b0,
      int bs,
      int kvDim,
      int off,
      short[] v,
      float scale,
      float[] o,
      int dst) {
    int l = VectorKernels.L;
    FloatVector a0 = FloatVector.zero(VectorKernels.F);
    FloatVector a1 = FloatVector.zero(VectorKernels.F);
    for (int b = b0, j = 0; j < len; b++) {
      int row = table[b] * bs * kvDim + off;
      for (int end = Math.min(len, j + bs); j < end; j++, row += kvDim) {
        FloatVector w = FloatVector.broadcast(VectorKernels.F, p[j]);
        a0 = widen(v, row).fma(w, a0);
        a1 = widen(v, row + l).fma(w, a1);
      }
    }
    a0.mul(scale).intoArray(o, dst);
    a1.mul(scale).intoArray(o, dst + l);
  }

  /** {@link VectorKernels#scores} over bf16 key rows. */
  static float scores(
      float[] x,
      int q,
      int len,
      int[] table,
      int bs,
      int kvDim,
      int off,
      short[] k,
      float scale,
      float[] s,
      int hd) {
    int l = VectorKernels.L;
    int bound = hd / l * l;
    float max = Float.NEGATIVE_INFINITY;
    for (int b = 0, j = 0; j < len; b++) {
      int row = table[b] * bs * kvDim + off;
      for (int end = Math.min(len, j + bs); j < end; j++, row += kvDim) {
        FloatVector a = FloatVector.zero(VectorKernels.F);
        int c = 0;
        for (; c < bound; c += l) {
          a = FloatVector.fromArray(VectorKernels.F, x, q + c).fma(widen(k, row + c), a);
        }
        float d = VectorMath.sum(a);
        for (; c < hd; c++) {
          d += x[q + c] * Bf16.widen(k[row + c]);
        }
        float v = d * scale;
        s[j] = v;
        max = Math.max(max, v);
      }
    }
    return max;
  }
}
