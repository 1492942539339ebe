package dev.starserve.backend.cpu;

import static dev.starserve.backend.cpu.VectorKernels.F;
import static dev.starserve.backend.cpu.VectorKernels.L;

import dev.starserve.backend.host.Int8Quantizer;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Kernels over int8 weight panels ({@link PackedMatrix#packInt8}): one int load gives the weights
 * of a whole panel for two input columns, sign-extended with shifts and converted to float in
 * registers. Activations stay float32, padded by the caller with zeros to whole blocks (as the
 * weights are), so that every block is exactly 32 columns and no kernel needs a tail step. The
 * decoding kernels loop over a block with a constant trip count, which C2 compiles without the pre-
 * and post-loops of a variable count (10-30% more weights per second in a cache-resident
 * microbenchmark on the busy development VM; no difference was visible end to end). Within a block
 * of 32 columns each output lane accumulates {@code q · x} column by column with fused
 * multiply-adds, starting from zero; the block's sum then joins the running total as {@code total =
 * fma(blockSum, scale, total)}, block by block from {@code total = 0}. Every kernel does exactly
 * this, so a token's result does not depend on how many tokens share a step.
 *
 * <p>One token (decoding) reads the int8 panel directly, the totals in registers. Several tokens
 * first {@link #dequantize} the panel into a float scratch (the integers as floats, exact, and the
 * scales), once for all the tokens of a block: widening every weight again for every group of six
 * tokens measured about half the speed of the bf16 kernels. Their tiles keep the totals in {@code
 * out} (which the caller zeroes; twelve block accumulators already fill the registers), reading and
 * writing them once per block.
 *
 * <p>NOTE: shifts on int lanes rather than {@code ByteVector.convertShape(B2F)}: the byte-to-float
 * conversion measured about a third slower per weight on AVX2. Each kernel is small and written out
 * on purpose: C2 stops inlining Vector API calls in large methods, and boxed vectors are ten times
 * slower.
 */
final class Int8Panels {
  private Int8Panels() {}

  private static final VectorSpecies<Integer> I = VectorKernels.I;
  private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
  private static final int P = PackedMatrix.P;
  private static final int BLOCK = Int8Quantizer.BLOCK;
  private static final long SCALES = 4L * P; // bytes of one block's scales
  private static final long QUANTS = (long) BLOCK * P; // bytes of one block's weights
  private static final int PAIRS = BLOCK / 2;

  /** Byte 0 of every lane, sign-extended: rows 0..L-1, first column of the pair. */
  private static FloatVector q0(IntVector i) {
    return i.lanewise(VectorOperators.LSHL, 24)
        .lanewise(VectorOperators.ASHR, 24)
        .convert(VectorOperators.I2F, 0)
        .reinterpretAsFloats();
  }

  /** Byte 1: rows L..P-1, first column. */
  private static FloatVector q1(IntVector i) {
    return i.lanewise(VectorOperators.LSHL, 16)
        .lanewise(VectorOperators.ASHR, 24)
        .convert(VectorOperators.I2F, 0)
        .reinterpretAsFloats();
  }

  /** Byte 2: rows 0..L-1, second column. */
  private static FloatVector q2(IntVector i) {
    return i.lanewise(VectorOperators.LSHL, 8)
        .lanewise(VectorOperators.ASHR, 24)
        .convert(VectorOperators.I2F, 0)
        .reinterpretAsFloats();
  }

  /** Byte 3: rows L..P-1, second column. */
  private static FloatVector q3(IntVector i) {
    return i.lanewise(VectorOperators.ASHR, 24)
        .convert(VectorOperators.I2F, 0)
        .reinterpretAsFloats();
  }

  /**
   * One token × one panel: {@code out[o0 + j] = Σ_k x[x0 + k] · w(panel row j, k)} for j in 0..P-1
   * over {@code blocks} blocks ({@code x} zero past the real columns); {@code wb} is the panel's
   * byte offset.
   */
  static void tile1(float[] x, int x0, int blocks, MemorySegment w, long wb, float[] out, int o0) {
    FloatVector ta = FloatVector.zero(F);
    FloatVector tb = FloatVector.zero(F);
    int c = x0;
    for (int blk = 0; blk < blocks; blk++) {
      FloatVector a = FloatVector.zero(F);
      FloatVector b = FloatVector.zero(F);
      for (int pair = 0; pair < PAIRS; pair++, c += 2, wb += 2 * P) {
        IntVector i = IntVector.fromMemorySegment(I, w, wb, LE);
        FloatVector v = FloatVector.broadcast(F, x[c]);
        a = q0(i).fma(v, a);
        b = q1(i).fma(v, b);
        v = FloatVector.broadcast(F, x[c + 1]);
        a = q2(i).fma(v, a);
        b = q3(i).fma(v, b);
      }
      ta = a.fma(FloatVector.fromMemorySegment(F, w, wb, LE), ta); // in place: see tile1x2
      tb = b.fma(FloatVector.fromMemorySegment(F, w, wb + 4L * L, LE), tb);
      wb += SCALES;
    }
    ta.intoArray(out, o0);
    tb.intoArray(out, o0 + L);
  }

  /**
   * One token × two adjacent panels (decoding: four independent FMA chains keep the loads in
   * flight), same order as {@link #tile1}; writes {@code out[o0 .. o0 + 2P)}.
   */
  static void tile1x2(
      float[] x, int x0, int blocks, MemorySegment w, long wb, float[] out, int o0) {
    long next = (QUANTS + SCALES) * blocks;
    FloatVector ta = FloatVector.zero(F);
    FloatVector tb = FloatVector.zero(F);
    FloatVector tc = FloatVector.zero(F);
    FloatVector td = FloatVector.zero(F);
    int c = x0;
    for (int blk = 0; blk < blocks; blk++) {
      FloatVector a = FloatVector.zero(F);
      FloatVector b = FloatVector.zero(F);
      FloatVector e = FloatVector.zero(F);
      FloatVector d = FloatVector.zero(F);
      for (int pair = 0; pair < PAIRS; pair++, c += 2, wb += 2 * P) {
        IntVector i = IntVector.fromMemorySegment(I, w, wb, LE);
        IntVector j = IntVector.fromMemorySegment(I, w, wb + next, LE);
        FloatVector v = FloatVector.broadcast(F, x[c]);
        a = q0(i).fma(v, a);
        b = q1(i).fma(v, b);
        e = q0(j).fma(v, e);
        d = q1(j).fma(v, d);
        v = FloatVector.broadcast(F, x[c + 1]);
        a = q2(i).fma(v, a);
        b = q3(i).fma(v, b);
        e = q2(j).fma(v, e);
        d = q3(j).fma(v, d);
      }
      // The scales loaded in place, not through scale(): C2 refused to inline that helper here
      // ("callee uses too much stack"), and the call then boxed a FloatVector and ran the Vector
      // API's allocating fallback load, about 16 MB per decode step.
      ta = a.fma(FloatVector.fromMemorySegment(F, w, wb, LE), ta);
      tb = b.fma(FloatVector.fromMemorySegment(F, w, wb + 4L * L, LE), tb);
      tc = e.fma(FloatVector.fromMemorySegment(F, w, wb + next, LE), tc);
      td = d.fma(FloatVector.fromMemorySegment(F, w, wb + next + 4L * L, LE), td);
      wb += SCALES;
    }
    ta.intoArray(out, o0);
    tb.intoArray(out, o0 + L);
    tc.intoArray(out, o0 + 2 * L);
    td.intoArray(out, o0 + 3 * L);
  }

  /**
   * Widens the int8 panel at {@code wb} ({@code blocks} blocks) into {@code q[c·P + j]} = the
   * integer of row j, column c, as a float (exact), and {@code s[b·P + j]} = the scale of block b
   * of row j. {@code q} needs {@code 32·blocks·P} floats, {@code s} {@code blocks·P}.
   */
  static void dequantize(MemorySegment w, long wb, int blocks, float[] q, float[] s) {
    int qi = 0;
    for (int blk = 0, si = 0; blk < blocks; blk++, si += P) {
      for (int pair = 0; pair < PAIRS; pair++, wb += 2 * P, qi += 2 * P) {
        IntVector i = IntVector.fromMemorySegment(I, w, wb, LE);
        q0(i).intoArray(q, qi);
        q1(i).intoArray(q, qi + L);
        q2(i).intoArray(q, qi + P);
        q3(i).intoArray(q, qi + P + L);
      }
      FloatVector.fromMemorySegment(F, w, wb, LE).intoArray(s, si);
      FloatVector.fromMemorySegment(F, w, wb + 4L * L, LE).intoArray(s, si + L);
      wb += SCALES;
    }
  }

  /**
   * Four tokens × one dequantized panel: {@code out[o0 + t·os + j] += Σ_k xp[xb + 4k + t] · w(panel
   * row j, k)} for t in 0..3, j in 0..P-1, adding into {@code out} (which the caller zeroes).
   * {@code xp} holds the four tokens interleaved per column (see {@link PanelGemm}), zero past the
   * real columns; {@code q} and {@code s} are the panel as {@link #dequantize} wrote it.
   */
  static void tile4(
      float[] xp, int xb, int blocks, float[] q, float[] s, float[] out, int o0, int os) {
    int qi = 0;
    int c = xb;
    for (int blk = 0, si = 0; blk < blocks; blk++, si += P) {
      FloatVector a0 = FloatVector.zero(F), b0 = FloatVector.zero(F);
      FloatVector a1 = FloatVector.zero(F), b1 = FloatVector.zero(F);
      FloatVector a2 = FloatVector.zero(F), b2 = FloatVector.zero(F);
      FloatVector a3 = FloatVector.zero(F), b3 = FloatVector.zero(F);
      // NOTE: the bound hides the trip count (32) from C2, which otherwise unrolls the loop
      // completely: prefill measured about a third slower that way.
      int end = c + 4 * Math.min(BLOCK, 32 * blocks - 32 * blk);
      for (; c < end; c += 4, qi += P) {
        FloatVector lo = FloatVector.fromArray(F, q, qi);
        FloatVector hi = FloatVector.fromArray(F, q, qi + L);
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
      FloatVector sa = FloatVector.fromArray(F, s, si);
      FloatVector sb = FloatVector.fromArray(F, s, si + L);
      int o = o0;
      a0.fma(sa, FloatVector.fromArray(F, out, o)).intoArray(out, o);
      b0.fma(sb, FloatVector.fromArray(F, out, o + L)).intoArray(out, o + L);
      o += os;
      a1.fma(sa, FloatVector.fromArray(F, out, o)).intoArray(out, o);
      b1.fma(sb, FloatVector.fromArray(F, out, o + L)).intoArray(out, o + L);
      o += os;
      a2.fma(sa, FloatVector.fromArray(F, out, o)).intoArray(out, o);
      b2.fma(sb, FloatVector.fromArray(F, out, o + L)).intoArray(out, o + L);
      o += os;
      a3.fma(sa, FloatVector.fromArray(F, out, o)).intoArray(out, o);
      b3.fma(sb, FloatVector.fromArray(F, out, o + L)).intoArray(out, o + L);
    }
  }
}
