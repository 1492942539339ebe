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

  /** {@code Σ x[xi..xi+len) · k[ki..ki+len)} with k widened from bf16. */
  static float dot(float[] x, int xi, short[] k, int ki, int len) {
    // Two accumulators, as in VectorKernels.dot: one chain of dependent FMAs is latency-bound.
    FloatVector a0 = FloatVector.zero(VectorKernels.F);
    FloatVector a1 = FloatVector.zero(VectorKernels.F);
    int l = VectorKernels.L;
    int bound2 = len / (2 * l) * (2 * l);
    int c = 0;
    for (; c < bound2; c += 2 * l) {
      a0 = FloatVector.fromArray(VectorKernels.F, x, xi + c).fma(widen(k, ki + c), a0);
      a1 = FloatVector.fromArray(VectorKernels.F, x, xi + c + l).fma(widen(k, ki + c + l), a1);
    }
    int bound = VectorKernels.F.loopBound(len);
    for (; c < bound; c += l) {
      a0 = FloatVector.fromArray(VectorKernels.F, x, xi + c).fma(widen(k, ki + c), a0);
    }
    float s = a0.add(a1).reduceLanes(VectorOperators.ADD);
    for (; c < len; c++) {
      s += x[xi + c] * Bf16.widen(k[ki + c]);
    }
    return s;
  }

  /** {@code y[yi..yi+len) += alpha · v[vi..vi+len)} with v widened from bf16. */
  static void axpy(float alpha, short[] v, int vi, float[] y, int yi, int len) {
    FloatVector av = FloatVector.broadcast(VectorKernels.F, alpha);
    int bound = VectorKernels.F.loopBound(len);
    int c = 0;
    for (; c < bound; c += VectorKernels.L) {
      widen(v, vi + c)
          .fma(av, FloatVector.fromArray(VectorKernels.F, y, yi + c))
          .intoArray(y, yi + c);
    }
    for (; c < len; c++) {
      y[yi + c] += alpha * Bf16.widen(v[vi + c]);
    }
  }
}
