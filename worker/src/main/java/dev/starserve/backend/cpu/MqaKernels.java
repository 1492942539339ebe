package dev.starserve.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Multi-query attention (one K/V head shared by every query head) with the query heads in vector
 * lanes: for one token, the scores of all heads at a position are {@code Qᵀ · k(j)}, a panel
 * product with the transposed, pre-scaled query ({@code qt[c·hp + h]}, heads padded with zeros to
 * {@code hp}, whole pairs of vectors) as the panel and the cached key rows as the tokens. Each key
 * row is read once for all heads, no score needs a horizontal reduction, and the softmax runs over
 * positions with the heads in lanes ({@link VectorMath#exp} on whole vectors).
 *
 * <pre>
 * qt: [hd × hp]    qt[c·hp + h] = scale · q_h[c]   (h ≥ nHead: 0)
 * s:  [len × hp]   s[j·hp + h]  = Σ_c qt[c·hp + h] · k(j)[c], then exp(s − max_h) in place
 * </pre>
 *
 * <p>Every score is one lane accumulated over the head dimension in order with fused multiply-adds,
 * whether its position falls in a group of four or in the tail, so a token's result depends neither
 * on its batch nor on how positions are grouped.
 *
 * <p>NOTE: one small method per loop, so that C2 inlines the Vector API calls into each and keeps
 * the vectors in registers (see {@link Bf16Panels}).
 */
final class MqaKernels {
  private MqaKernels() {}

  private static final VectorSpecies<Float> F = VectorKernels.F;
  private static final int L = VectorKernels.L;

  /** Head lanes of one token: {@code nHead} rounded up to whole pairs of vectors. */
  static int headLanes(int nHead) {
    return (nHead + 2 * L - 1) / (2 * L) * (2 * L);
  }

  /**
   * {@code qt[c·hp + h] = scale · x[q0 + h·hd + c]} for heads {@code h < nHead} (multi-query: the
   * query heads side by side), zero in the padding lanes.
   */
  static void transposeQuery(
      float[] x, int q0, int nHead, int hd, float scale, float[] qt, int hp) {
    for (int c = 0; c < hd; c++) {
      int r = c * hp;
      for (int h = 0; h < nHead; h++) {
        qt[r + h] = scale * x[q0 + h * hd + c];
      }
      for (int h = nHead; h < hp; h++) {
        qt[r + h] = 0f;
      }
    }
  }

  /** Offset of position {@code j}'s row in the cache, through the block table. */
  static int row(int[] table, int bs, int kvDim, int j) {
    return (table[j / bs] * bs + j % bs) * kvDim;
  }

  /**
   * Scores of positions {@code [j0, j0 + len)} for every head lane, fp32 keys: {@code s[(j − j0)·hp
   * + h]}.
   */
  static void scores(
      float[] qt,
      int hp,
      int hd,
      int j0,
      int len,
      int[] table,
      int bs,
      int kvDim,
      float[] k,
      float[] s) {
    int j = 0;
    for (; j + 4 <= len; j += 4) {
      int r0 = row(table, bs, kvDim, j0 + j);
      int r1 = row(table, bs, kvDim, j0 + j + 1);
      int r2 = row(table, bs, kvDim, j0 + j + 2);
      int r3 = row(table, bs, kvDim, j0 + j + 3);
      for (int h = 0; h < hp; h += 2 * L) {
        tile4(qt, hp, h, hd, k, r0, r1, r2, r3, s, j * hp + h);
      }
    }
    for (; j < len; j++) {
      int r = row(table, bs, kvDim, j0 + j);
      for (int h = 0; h < hp; h += 2 * L) {
        tile1(qt, hp, h, hd, k, r, s, j * hp + h);
      }
    }
  }

  /** Scores of positions {@code [j0, j0 + len)} for every head lane, bf16 keys. */
  static void scores(
      float[] qt,
      int hp,
      int hd,
      int j0,
      int len,
      int[] table,
      int bs,
      int kvDim,
      short[] k,
      float[] s) {
    int j = 0;
    for (; j + 4 <= len; j += 4) {
      int r0 = row(table, bs, kvDim, j0 + j);
      int r1 = row(table, bs, kvDim, j0 + j + 1);
      int r2 = row(table, bs, kvDim, j0 + j + 2);
      int r3 = row(table, bs, kvDim, j0 + j + 3);
      for (int h = 0; h < hp; h += 2 * L) {
        tile4(qt, hp, h, hd, k, r0, r1, r2, r3, s, j * hp + h);
      }
    }
    for (; j < len; j++) {
      int r = row(table, bs, kvDim, j0 + j);
      for (int h = 0; h < hp; h += 2 * L) {
        tile1(qt, hp, h, hd, k, r, s, j * hp + h);
      }
    }
  }

  /** Four positions (key rows at r0..r3) × head lanes {@code [h, h + 2L)}. */
  private static void tile4(
      float[] qt,
      int hp,
      int h,
      int hd,
      float[] k,
      int r0,
      int r1,
      int r2,
      int r3,
      float[] s,
      int s0) {
    FloatVector a0 = FloatVector.zero(F), b0 = FloatVector.zero(F);
    FloatVector a1 = FloatVector.zero(F), b1 = FloatVector.zero(F);
    FloatVector a2 = FloatVector.zero(F), b2 = FloatVector.zero(F);
    FloatVector a3 = FloatVector.zero(F), b3 = FloatVector.zero(F);
    for (int c = 0, qi = h; c < hd; c++, qi += hp) {
      FloatVector qa = FloatVector.fromArray(F, qt, qi);
      FloatVector qb = FloatVector.fromArray(F, qt, qi + L);
      FloatVector v = FloatVector.broadcast(F, k[r0 + c]);
      a0 = qa.fma(v, a0);
      b0 = qb.fma(v, b0);
      v = FloatVector.broadcast(F, k[r1 + c]);
      a1 = qa.fma(v, a1);
      b1 = qb.fma(v, b1);
      v = FloatVector.broadcast(F, k[r2 + c]);
      a2 = qa.fma(v, a2);
      b2 = qb.fma(v, b2);
      v = FloatVector.broadcast(F, k[r3 + c]);
      a3 = qa.fma(v, a3);
      b3 = qb.fma(v, b3);
    }
    a0.intoArray(s, s0);
    b0.intoArray(s, s0 + L);
    a1.intoArray(s, s0 + hp);
    b1.intoArray(s, s0 + hp + L);
    a2.intoArray(s, s0 + 2 * hp);
    b2.intoArray(s, s0 + 2 * hp + L);
    a3.intoArray(s, s0 + 3 * hp);
    b3.intoArray(s, s0 + 3 * hp + L);
  }

  /** One position × head lanes {@code [h, h + 2L)}, in the order of {@link #tile4}. */
  private static void tile1(
      float[] qt, int hp, int h, int hd, float[] k, int r, float[] s, int s0) {
    FloatVector a = FloatVector.zero(F);
    FloatVector b = FloatVector.zero(F);
    for (int c = 0, qi = h; c < hd; c++, qi += hp) {
      FloatVector v = FloatVector.broadcast(F, k[r + c]);
      a = FloatVector.fromArray(F, qt, qi).fma(v, a);
      b = FloatVector.fromArray(F, qt, qi + L).fma(v, b);
    }
    a.intoArray(s, s0);
    b.intoArray(s, s0 + L);
  }

  /** {@link #tile4} over bf16 key rows, each element widened as it is broadcast. */
  private static void tile4(
      float[] qt,
      int hp,
      int h,
      int hd,
      short[] k,
      int r0,
      int r1,
      int r2,
      int r3,
      float[] s,
      int s0) {
    FloatVector a0 = FloatVector.zero(F), b0 = FloatVector.zero(F);
    FloatVector a1 = FloatVector.zero(F), b1 = FloatVector.zero(F);
    FloatVector a2 = FloatVector.zero(F), b2 = FloatVector.zero(F);
    FloatVector a3 = FloatVector.zero(F), b3 = FloatVector.zero(F);
    for (int c = 0, qi = h; c < hd; c++, qi += hp) {
      FloatVector qa = FloatVector.fromArray(F, qt, qi);
      FloatVector qb = FloatVector.fromArray(F, qt, qi + L);
      FloatVector v = FloatVector.broadcast(F, Float.intBitsToFloat(k[r0 + c] << 16));
      a0 = qa.fma(v, a0);
      b0 = qb.fma(v, b0);
      v = FloatVector.broadcast(F, Float.intBitsToFloat(k[r1 + c] << 16));
      a1 = qa.fma(v, a1);
      b1 = qb.fma(v, b1);
      v = FloatVector.broadcast(F, Float.intBitsToFloat(k[r2 + c] << 16));
      a2 = qa.fma(v, a2);
      b2 = qb.fma(v, b2);
      v = FloatVector.broadcast(F, Float.intBitsToFloat(k[r3 + c] << 16));
      a3 = qa.fma(v, a3);
      b3 = qb.fma(v, b3);
    }
    a0.intoArray(s, s0);
    b0.intoArray(s, s0 + L);
    a1.intoArray(s, s0 + hp);
    b1.intoArray(s, s0 + hp + L);
    a2.intoArray(s, s0 + 2 * hp);
    b2.intoArray(s, s0 + 2 * hp + L);
    a3.intoArray(s, s0 + 3 * hp);
    b3.intoArray(s, s0 + 3 * hp + L);
  }

  /** {@link #tile1} over a bf16 key row. */
  private static void tile1(
      float[] qt, int hp, int h, int hd, short[] k, int r, float[] s, int s0) {
    FloatVector a = FloatVector.zero(F);
    FloatVector b = FloatVector.zero(F);
    for (int c = 0, qi = h; c < hd; c++, qi += hp) {
      FloatVector v = FloatVector.broadcast(F, Float.intBitsToFloat(k[r + c] << 16));
      a = FloatVector.fromArray(F, qt, qi).fma(v, a);
      b = FloatVector.fromArray(F, qt, qi + L).fma(v, b);
    }
    a.intoArray(s, s0);
    b.intoArray(s, s0 + L);
  }

  /**
   * Softmax numerators over positions, every head lane at once: {@code m[m0 + h] = max_j s[j·hp +
   * h]}, {@code s[j·hp + h] ← exp(s[j·hp + h] − m[m0 + h])} and {@code sums[s0 + h] = Σ_j} of them
   * (summed in position order).
   */
  static void softmax(float[] s, int len, int hp, float[] m, int m0, float[] sums, int s0) {
    for (int h = 0; h < hp; h += L) {
      softmaxLanes(s, len, hp, h, m, m0 + h, sums, s0 + h);
    }
  }

  private static void softmaxLanes(
      float[] s, int len, int hp, int h, float[] mo, int mi, float[] sums, int si) {
    FloatVector m = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
    for (int j = 0, i = h; j < len; j++, i += hp) {
      m = m.max(FloatVector.fromArray(F, s, i));
    }
    FloatVector sum = FloatVector.zero(F);
    for (int j = 0, i = h; j < len; j++, i += hp) {
      FloatVector e = VectorMath.exp(FloatVector.fromArray(F, s, i).sub(m));
      e.intoArray(s, i);
      sum = sum.add(e);
    }
    m.intoArray(mo, mi);
    sum.intoArray(sums, si);
  }

  /**
   * Joins the partial results of one token's position chunks, in chunk order, into its output: for
   * each head h, with {@code M = max_r m_r[h]}, {@code w_r = exp(m_r[h] − M)}: {@code o[dst + h·hd
   * + c] = (Σ_r w_r · acc_r[h·hd + c]) · (1 / Σ_r w_r · l_r[h])}. Chunk r's partial sits at {@code
   * part[p0 + r·unit]}: {@code acc} ({@code nHead·hd}), then {@code m} and {@code l} ({@code hp}
   * each). With one chunk this is {@code acc · (1 / l)} exactly ({@code w_0 = 1}).
   */
  static void merge(
      float[] part, int p0, int chunks, int unit, int nHead, int hd, int hp, float[] o, int dst) {
    int mOff = nHead * hd;
    int lOff = mOff + hp;
    for (int h = 0; h < nHead; h++) {
      float mx = Float.NEGATIVE_INFINITY;
      for (int r = 0; r < chunks; r++) {
        mx = Math.max(mx, part[p0 + r * unit + mOff + h]);
      }
      int od = dst + h * hd;
      float total = 0f;
      for (int r = 0; r < chunks; r++) {
        int u = p0 + r * unit;
        float w = (float) Math.exp(part[u + mOff + h] - mx);
        total += w * part[u + lOff + h];
        int a = u + h * hd;
        if (r == 0) {
          for (int c = 0; c < hd; c++) {
            o[od + c] = w * part[a + c];
          }
        } else {
          for (int c = 0; c < hd; c++) {
            o[od + c] += w * part[a + c];
          }
        }
      }
      float inv = 1f / total;
      for (int c = 0; c < hd; c++) {
        o[od + c] *= inv;
      }
    }
  }

  /** {@code p[j] = s[j·hp + h]} for {@code j < len}: one head's numerators, contiguous. */
  static void gather(float[] s, int len, int hp, int h, float[] p) {
    for (int j = 0, i = h; j < len; j++, i += hp) {
      p[j] = s[i];
    }
  }
}
