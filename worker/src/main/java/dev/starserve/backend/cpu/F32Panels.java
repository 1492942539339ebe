package dev.starserve.backend.cpu;

import static dev.starserve.backend.cpu.VectorKernels.F;
import static dev.starserve.backend.cpu.VectorKernels.L;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;

/**
 * Kernels over f32 weight panels, in the order of {@link Bf16Panels} (two vector loads a column).
 */
final class F32Panels {
  private F32Panels() {}

  private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

  /**
   * Four tokens × one panel: {@code out[o0 + t·os + j] = Σ_k xp[xb + 4k + t] · w(panel row j, k)}
   * for t in 0..3, j in 0..P-1. {@code xp} holds the four tokens interleaved per column (see {@link
   * PanelGemm}); {@code wb} is the panel's byte offset.
   */
  static void tile4(
      float[] xp, int xb, int k, MemorySegment w, long wb, float[] out, int o0, int os) {
    FloatVector a0 = FloatVector.zero(F), b0 = FloatVector.zero(F);
    FloatVector a1 = FloatVector.zero(F), b1 = FloatVector.zero(F);
    FloatVector a2 = FloatVector.zero(F), b2 = FloatVector.zero(F);
    FloatVector a3 = FloatVector.zero(F), b3 = FloatVector.zero(F);
    int end = xb + 4 * k;
    for (int c = xb; c < end; c += 4, wb += 8L * L) {
      FloatVector lo = FloatVector.fromMemorySegment(F, w, wb, LE);
      FloatVector hi = FloatVector.fromMemorySegment(F, w, wb + 4L * L, LE);
      FloatVector v = FloatVector.broadcast(F, xp[c]);
      a0 = lo.fma(v, a0);
      b0 = hi.fma(v, b0);
      v = FloatVector.broadcast(F, xp[c + 1]);
      a1 = lo.fma(v, a1);
      b1 = hi.fma(v, b1);
      v = FloatVector.broadcast(F, xp[c + 2]);
      a2 = lo.fma(v, a2);
      b2 = hi.fma(v, b2);
      v = FloatVector.broadcast(F, xp[c + 3]);
      a3 = lo.fma(v, a3);
      b3 = hi.fma(v, b3);
    }
    a0.intoArray(out, o0);
    b0.intoArray(out, o0 + L);
    a1.intoArray(out, o0 + os);
    b1.intoArray(out, o0 + os + L);
    a2.intoArray(out, o0 + 2 * os);
    b2.intoArray(out, o0 + 2 * os + L);
    a3.intoArray(out, o0 + 3 * os);
    b3.intoArray(out, o0 + 3 * os + L);
  }

  /**
   * One token × one panel: {@code out[o0 + j] = Σ_k x[x0 + k] · w(panel row j, k)}, accumulated in
   * exactly the order of {@link #tile4} (so a token's result does not depend on its batch).
   */
  static void tile1(float[] x, int x0, int k, MemorySegment w, long wb, float[] out, int o0) {
    FloatVector a = FloatVector.zero(F);
    FloatVector b = FloatVector.zero(F);
    int end = x0 + k;
    for (int c = x0; c < end; c++, wb += 8L * L) {
      FloatVector v = FloatVector.broadcast(F, x[c]);
      a = FloatVector.fromMemorySegment(F, w, wb, LE).fma(v, a);
      b = FloatVector.fromMemorySegment(F, w, wb + 4L * L, LE).fma(v, b);
    }
    a.intoArray(out, o0);
    b.intoArray(out, o0 + L);
  }

  /**
   * One token × two adjacent panels (decoding: four independent FMA chains keep the loads in
   * flight), same order as {@link #tile1}; writes {@code out[o0 .. o0 + 2P)}.
   */
  static void tile1x2(float[] x, int x0, int k, MemorySegment w, long wb, float[] out, int o0) {
    long next = (long) k * 8L * L;
    FloatVector a = FloatVector.zero(F);
    FloatVector b = FloatVector.zero(F);
    FloatVector a2 = FloatVector.zero(F);
    FloatVector b2 = FloatVector.zero(F);
    int end = x0 + k;
    for (int c = x0; c < end; c++, wb += 8L * L) {
      FloatVector v = FloatVector.broadcast(F, x[c]);
      a = FloatVector.fromMemorySegment(F, w, wb, LE).fma(v, a);
      b = FloatVector.fromMemorySegment(F, w, wb + 4L * L, LE).fma(v, b);
      a2 = FloatVector.fromMemorySegment(F, w, wb + next, LE).fma(v, a2);
      b2 = FloatVector.fromMemorySegment(F, w, wb + next + 4L * L, LE).fma(v, b2);
    }
    a.intoArray(out, o0);
    b.intoArray(out, o0 + L);
    a2.intoArray(out, o0 + 2 * L);
    b2.intoArray(out, o0 + 3 * L);
  }

  /**
   * One token × four adjacent panels, same order as {@link #tile1}; writes {@code out[o0 .. o0 +
   * 4P)}. NOTE: four weight streams per thread, as in {@link Bf16Panels#tile1x4}.
   */
  static void tile1x4(float[] x, int x0, int k, MemorySegment w, long wb, float[] out, int o0) {
    long next = (long) k * 8L * L;
    FloatVector a = FloatVector.zero(F);
    FloatVector b = FloatVector.zero(F);
    FloatVector a2 = FloatVector.zero(F);
    FloatVector b2 = FloatVector.zero(F);
    FloatVector a3 = FloatVector.zero(F);
    FloatVector b3 = FloatVector.zero(F);
    FloatVector a4 = FloatVector.zero(F);
    FloatVector b4 = FloatVector.zero(F);
    int end = x0 + k;
    for (int c = x0; c < end; c++, wb += 8L * L) {
      FloatVector v = FloatVector.broadcast(F, x[c]);
      a = FloatVector.fromMemorySegment(F, w, wb, LE).fma(v, a);
      b = FloatVector.fromMemorySegment(F, w, wb + 4L * L, LE).fma(v, b);
      a2 = FloatVector.fromMemorySegment(F, w, wb + next, LE).fma(v, a2);
      b2 = FloatVector.fromMemorySegment(F, w, wb + next + 4L * L, LE).fma(v, b2);
      a3 = FloatVector.fromMemorySegment(F, w, wb + 2 * next, LE).fma(v, a3);
      b3 = FloatVector.fromMemorySegment(F, w, wb + 2 * next + 4L * L, LE).fma(v, b3);
      a4 = FloatVector.fromMemorySegment(F, w, wb + 3 * next, LE).fma(v, a4);
      b4 = FloatVector.fromMemorySegment(F, w, wb + 3 * next + 4L * L, LE).fma(v, b4);
    }
    a.intoArray(out, o0);
    b.intoArray(out, o0 + L);
    a2.intoArray(out, o0 + 2 * L);
    b2.intoArray(out, o0 + 3 * L);
    a3.intoArray(out, o0 + 4 * L);
    b3.intoArray(out, o0 + 5 * L);
    a4.intoArray(out, o0 + 6 * L);
    b4.intoArray(out, o0 + 7 * L);
  }
}
