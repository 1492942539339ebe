package dev.starserve.backend;

/**
 * How the fused {@code c_attn} output row of one token is laid out, and how query heads map to K/V
 * heads.
 *
 * <pre>
 * multi-query (kvHeads = 1):  [ q0 q1 … q(H-1) | k | v ]          each piece headDim wide
 * multi-head  (kvHeads = H):  [ q0 k0 v0 | q1 k1 v1 | … ]        HF's per-head interleaving
 * </pre>
 */
public record AttentionShape(int nHead, int kvHeads, int headDim, float scale) {
  public AttentionShape {
    if (nHead <= 0 || headDim <= 0) {
      throw new IllegalArgumentException(
          "nHead and headDim must be positive, got " + nHead + ", " + headDim);
    }
    if (kvHeads != 1 && kvHeads != nHead) {
      throw new IllegalArgumentException(
          "kvHeads must be 1 (multi-query) or nHead (" + nHead + "), got " + kvHeads);
    }
  }

  public boolean multiQuery() {
    return kvHeads == 1;
  }

  /** Width of one token's c_attn output: n_embd + 2·kvDim. */
  public int qkvDim() {
    return (nHead + 2 * kvHeads) * headDim;
  }

  /** Width of one token's K (or V) in the cache. */
  public int kvDim() {
    return kvHeads * headDim;
  }

  /** Width of the attention output (= n_embd). */
  public int outDim() {
    return nHead * headDim;
  }

  /** The K/V head that query head {@code h} reads. */
  public int kvHeadOf(int h) {
    return multiQuery() ? 0 : h;
  }

  /** Column of query head {@code h} in a c_attn output row. */
  public int qOffset(int h) {
    return multiQuery() ? h * headDim : h * 3 * headDim;
  }

  /** Column of K head {@code kh} in a c_attn output row. */
  public int kOffset(int kh) {
    return multiQuery() ? nHead * headDim : kh * 3 * headDim + headDim;
  }

  /** Column of V head {@code kh} in a c_attn output row. */
  public int vOffset(int kh) {
    return multiQuery() ? nHead * headDim + headDim : kh * 3 * headDim + 2 * headDim;
  }
}
