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
 * of a whole panel for two input columns. Each byte holds {@code u = q + 128} (stored so by the
 * packing), isolated by a mask (bytes 0-2, left in place: u, u·2^8, u·2^16) or a logical shift
 * (byte 3) and converted to float in registers; the activations the kernels multiply them with are
 * scaled by the inverse power of two ({@link #prepareDecode}), so every product is exactly {@code u
 * · x}. Activations stay float32, padded by the caller with zeros to whole blocks (as the weights
 * are), so that every block is exactly 32 columns and no kernel needs a tail step. The decoding
 * kernels loop over a block with a constant trip count, which C2 compiles without the pre- and
 * post-loops of a variable count. Within a block of 32 columns each output lane accumulates {@code
 * u · x} column by column with fused multiply-adds, starting from zero; the block's sum of {@code q
 * · x} is then that minus {@code 128 · Σ x} ({@link #blockSums}, one per token and block), and
 * joins the running total as {@code total = fma(blockSum, scale, total)}, block by block from
 * {@code total = 0}. Every kernel does exactly this, so a token's result does not depend on how
 * many tokens share a step.
 *
 * <p>One token (decoding) reads the int8 panel directly, the totals in registers. Several tokens
 * first {@link #dequantize} the panel into a float scratch (the values u as floats, exact, and the
 * scales), once for all the tokens of a block: widening every weight again for every group of six
 * tokens measured about half the speed of the bf16 kernels. Their tiles keep the totals in {@code
 * out} (which the caller zeroes; twelve block accumulators already fill the registers), reading and
 * writing them once per block.
 *
 * <p>NOTE: mask-and-convert of unsigned bytes (4 integer operations per load) rather than
 * sign-extending each byte with two shifts (7): a cache-resident single-thread loop of the decoding
 * kernel went from 24-28 to 32-35 GFLOP/s (2026-11-29, quiet VM); {@code
 * ByteVector.convertShape(B2F)} measured about a third slower per weight on AVX2, and B2I then I2F
 * fell back to boxed vectors. Each kernel is small and written out on purpose: C2 stops inlining
 * Vector API calls in large methods, and boxed vectors are ten times slower.
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

  private static final float TWO_M8 = 1f / 256;
  private static final float TWO_M16 = 1f / 65536;

  /** Byte 0 of every (flipped) lane, {@code u = q + 128}: rows 0..L-1, first column of the pair. */
  private static FloatVector u0(IntVector u) {
    return u.and(0xff).convert(VectorOperators.I2F, 0).reinterpretAsFloats();
  }

  /** Byte 1 times 2^8 (masked in place): rows L..P-1, first column. */
  private static FloatVector u1x256(IntVector u) {
    return u.and(0xff00).convert(VectorOperators.I2F, 0).reinterpretAsFloats();
  }

  /** Byte 2 times 2^16 (masked in place): rows 0..L-1, second column. */
  private static FloatVector u2x65536(IntVector u) {
    return u.and(0xff0000).convert(VectorOperators.I2F, 0).reinterpretAsFloats();
  }

  /** Byte 3: rows L..P-1, second column. */
  private static FloatVector u3(IntVector u) {
    return u.lanewise(VectorOperators.LSHR, 24)
        .convert(VectorOperators.I2F, 0)
        .reinterpretAsFloats();
  }

  /**
   * Lays one token's activations out for the decoding kernels: {@code xq[4m .. 4m+3] = x[2m],
   * x[2m]·2^-8, x[2m+1]·2^-16, x[2m+1]} for column pairs m of {@code stride} columns ({@code x}
   * zero past {@code cols}), and {@code xs[b] = 128 · Σ x} over block b in column order. The scaled
   * copies undo the 2^8 and 2^16 that the kernels leave on bytes 1 and 2 (a byte masked in place
   * and converted); scaling by a power of two is exact (for |x| above 2^-110), so every product is
   * exactly the one the multi-token kernels form.
   */
  static void prepareDecode(float[] x, int cols, int stride, float[] xq, float[] xs) {
    for (int c = 0; c < stride; c += 2) {
      float a = c < cols ? x[c] : 0f;
      float b = c + 1 < cols ? x[c + 1] : 0f;
      xq[2 * c] = a;
      xq[2 * c + 1] = a * TWO_M8;
      xq[2 * c + 2] = b * TWO_M16;
      xq[2 * c + 3] = b;
    }
    blockSums(x, 0, cols, stride / BLOCK, xs, 0);
  }

  /**
   * {@code xs[xs0 + b] = 128 · Σ x[x0 + k]} over the columns k of block b (zero past {@code cols}),
   * summed in column order: the offset that turns sums of {@code u · x} into sums of {@code q · x},
   * computed once per token and shared by every kernel.
   */
  static void blockSums(float[] x, int x0, int cols, int blocks, float[] xs, int xs0) {
    for (int b = 0; b < blocks; b++) {
      float sum = 0f;
      for (int k = b * BLOCK, end = Math.min(cols, k + BLOCK); k < end; k++) {
        sum += x[x0 + k];
      }
      xs[xs0 + b] = 128f * sum;
    }
  }

  /**
   * One token × one panel: {@code out[o0 + j] = Σ_k x[k] · w(panel row j, k)} for j in 0..P-1 over
   * {@code blocks} blocks, the activations as {@link #prepareDecode} laid them out; {@code wb} is
   * the panel's byte offset.
   */
  static void tile1(
      float[] xq, float[] xs, int blocks, MemorySegment w, long wb, float[] out, int o0) {
    FloatVector ta = FloatVector.zero(F);
    FloatVector tb = FloatVector.zero(F);
    int c = 0;
    for (int blk = 0; blk < blocks; blk++) {
      FloatVector a = FloatVector.zero(F);
      FloatVector b = FloatVector.zero(F);
      for (int pair = 0; pair < PAIRS; pair++, c += 4, wb += 2 * P) {
        IntVector u = IntVector.fromMemorySegment(I, w, wb, LE);
        a = u0(u).fma(FloatVector.broadcast(F, xq[c]), a);
        b = u1x256(u).fma(FloatVector.broadcast(F, xq[c + 1]), b);
        a = u2x65536(u).fma(FloatVector.broadcast(F, xq[c + 2]), a);
        b = u3(u).fma(FloatVector.broadcast(F, xq[c + 3]), b);
      }
      FloatVector corr = FloatVector.broadcast(F, xs[blk]);
      ta = a.sub(corr).fma(FloatVector.fromMemorySegment(F, w, wb, LE), ta); // see tile1x2
      tb = b.sub(corr).fma(FloatVector.fromMemorySegment(F, w, wb + 4L * L, LE), tb);
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
      float[] xq, float[] xs, int blocks, MemorySegment w, long wb, float[] out, int o0) {
    long next = (QUANTS + SCALES) * blocks;
    FloatVector ta = FloatVector.zero(F);
    FloatVector tb = FloatVector.zero(F);
    FloatVector tc = FloatVector.zero(F);
    FloatVector td = FloatVector.zero(F);
    int c = 0;
    for (int blk = 0; blk < blocks; blk++) {
      FloatVector a = FloatVector.zero(F);
      FloatVector b = FloatVector.zero(F);
      FloatVector e = FloatVector.zero(F);
      FloatVector d = FloatVector.zero(F);
      for (int pair = 0; pair < PAIRS; pair++, c += 4, wb += 2 * P) {
        IntVector u = IntVector.fromMemorySegment(I, w, wb, LE);
        IntVector v = IntVector.fromMemorySegment(I, w, wb + next, LE);
        FloatVector x0 = FloatVector.broadcast(F, xq[c]);
        FloatVector x1 = FloatVector.broadcast(F, xq[c + 1]);
        a = u0(u).fma(x0, a);
        b = u1x256(u).fma(x1, b);
        e = u0(v).fma(x0, e);
        d = u1x256(v).fma(x1, d);
        FloatVector x2 = FloatVector.broadcast(F, xq[c + 2]);
        FloatVector x3 = FloatVector.broadcast(F, xq[c + 3]);
        a = u2x65536(u).fma(x2, a);
        b = u3(u).fma(x3, b);
        e = u2x65536(v).fma(x2, e);
        d = u3(v).fma(x3, d);
      }
      // The scales loaded in place, not through a helper: C2 refused to inline one here ("callee
      // uses too much stack"), and the call then boxed a FloatVector and ran the Vector API's
      // allocating fallback load, about 16 MB per decode step.
      FloatVector corr = FloatVector.broadcast(F, xs[blk]);
      ta = a.sub(corr).fma(FloatVector.fromMemorySegment(F, w, wb, LE), ta);
      tb = b.sub(corr).fma(FloatVector.fromMemorySegment(F, w, wb + 4L * L, LE), tb);
      tc = e.sub(corr).fma(FloatVector.fromMemorySegment(F, w, wb + next, LE), tc);
      td = d.sub(corr).fma(FloatVector.fromMemorySegment(F, w, wb + next + 4L * L, LE), td);
      wb += SCALES;
    }
    ta.intoArray(out, o0);
    tb.intoArray(out, o0 + L);
    tc.intoArray(out, o0 + 2 * L);
    td.intoArray(out, o0 + 3 * L);
  }

  /**
   * Widens the int8 panel at {@code wb} ({@code blocks} blocks) into {@code q[c·P + j]} = the
   * stored {@code u = q + 128} of row j, column c, as a float (exact), and {@code s[b·P + j]} = the
   * scale of block b of row j. {@code q} needs {@code 32·blocks·P} floats, {@code s} {@code
   * blocks·P}.
   */
  static void dequantize(MemorySegment w, long wb, int blocks, float[] q, float[] s) {
    int qi = 0;
    for (int blk = 0, si = 0; blk < blocks; blk++, si += P) {
      for (int pair = 0; pair < PAIRS; pair++, wb += 2 * P, qi += 2 * P) {
        IntVector u = IntVector.fromMemorySegment(I, w, wb, LE);
        u0(u).intoArray(q, qi);
        u.lanewise(VectorOperators.LSHR, 8)
            .and(0xff)
            .convert(VectorOperators.I2F, 0)
            .reinterpretAsFloats()
            .intoArray(q, qi + L);
        u.lanewise(VectorOperators.LSHR, 16)
            .and(0xff)
            .convert(VectorOperators.I2F, 0)
            .reinterpretAsFloats()
            .intoArray(q, qi + P);
        u3(u).intoArray(q, qi + P + L);
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
   * real columns; {@code q} and {@code s} are the panel as {@link #dequantize} wrote it; {@code
   * xs[xs0 + t·blocks + b]} is token t's {@link #blockSums} entry for block b.
   */
  static void tile4(
      float[] xp,
      int xb,
      int blocks,
      float[] q,
      float[] s,
      float[] xs,
      int xs0,
      float[] out,
      int o0,
      int os) {
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
      int xi = xs0 + blk;
      FloatVector corr = FloatVector.broadcast(F, xs[xi]);
      a0.sub(corr).fma(sa, FloatVector.fromArray(F, out, o)).intoArray(out, o);
      b0.sub(corr).fma(sb, FloatVector.fromArray(F, out, o + L)).intoArray(out, o + L);
      o += os;
      xi += blocks;
      corr = FloatVector.broadcast(F, xs[xi]);
      a1.sub(corr).fma(sa, FloatVector.fromArray(F, out, o)).intoArray(out, o);
      b1.sub(corr).fma(sb, FloatVector.fromArray(F, out, o + L)).intoArray(out, o + L);
      o += os;
      xi += blocks;
      corr = FloatVector.broadcast(F, xs[xi]);
      a2.sub(corr).fma(sa, FloatVector.fromArray(F, out, o)).intoArray(out, o);
      b2.sub(corr).fma(sb, FloatVector.fromArray(F, out, o + L)).intoArray(out, o + L);
      o += os;
      xi += blocks;
      corr = FloatVector.broadcast(F, xs[xi]);
      a3.sub(corr).fma(sa, FloatVector.fromArray(F, out, o)).intoArray(out, o);
      b3.sub(corr).fma(sb, FloatVector.fromArray(F, out, o + L)).intoArray(out, o + L);
    }
  }
}
