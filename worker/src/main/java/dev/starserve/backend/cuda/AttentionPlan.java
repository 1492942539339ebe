package dev.starserve.backend.cuda;

import dev.starserve.backend.AttentionShape;

/**
 * How one attention call is cut into thread blocks (kernels.cu, {@code attention_paged}): each
 * block takes up to {@code groupMax} consecutive tokens of one sequence and {@code headsPerBlock}
 * of the query heads that share a K/V head, as many as its shared memory holds.
 *
 * <pre>
 * shared memory of a block (floats), rows = tokens × heads:
 *   q[rows][hd] + acc[rows][hd] + K/V tile[ATT_TJ][hd + 1] + scores[rows][ATT_TJ] + m, l, corr[rows]
 * </pre>
 */
record AttentionPlan(int headsPerBlock, int groupMax) {

  /** Positions per K/V tile: kernels.cu ATT_TJ. */
  static final int ATT_TJ = 32;

  /** Query rows (tokens × heads) a block aims for. */
  static final int ROWS_TARGET = 64;

  /** Dynamic shared memory in bytes of a block of {@code tokens} tokens × {@code heads} heads. */
  static int smem(int tokens, int heads, int hd) {
    long rows = (long) tokens * heads;
    long floats = 2 * rows * hd + (long) ATT_TJ * (hd + 1) + rows * ATT_TJ + 3 * rows;
    return (int) Math.min(Integer.MAX_VALUE, floats * Float.BYTES);
  }

  /**
   * All query heads of a K/V head in one block when they fit in {@code maxSmem} bytes (so each K/V
   * row is loaded once for all of them), else halves until they do; then as many tokens per block
   * as {@link #ROWS_TARGET} rows allow and the memory holds.
   *
   * @throws IllegalArgumentException when not even one head of one token fits
   */
  static AttentionPlan choose(AttentionShape shape, int maxSmem) {
    int hd = shape.headDim();
    int heads = shape.nHead() / shape.kvHeads();
    while (heads > 1 && smem(1, heads, hd) > maxSmem) {
      heads = (heads + 1) / 2;
    }
    if (smem(1, heads, hd) > maxSmem) {
      throw new IllegalArgumentException(
          "attention: head width "
              + hd
              + " needs "
              + smem(1, heads, hd)
              + " bytes of shared memory per block; the GPU allows "
              + maxSmem);
    }
    int tokens = Math.max(1, ROWS_TARGET / heads);
    while (tokens > 1 && smem(tokens, heads, hd) > maxSmem) {
      tokens--;
    }
    return new AttentionPlan(heads, tokens);
  }
}
