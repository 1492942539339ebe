package dev.starserve.backend;

/**
 * Where every scheduled token of one engine step comes from and where its K/V goes: the plain data
 * a forward pass needs besides the weights. Row {@code t} of every activation buffer is token
 * {@code t} of this layout.
 *
 * <p>Token {@code t} belongs to sequence {@code tokenSeq[t]}, sits at {@code positions[t]} in it,
 * writes its K/V to {@code slotMapping[t]}, and attends causally to positions {@code
 * 0..positions[t]} of its sequence, read through {@code blockTables[tokenSeq[t]]}. Tokens of one
 * sequence appear in increasing position order, so a prefill chunk sees its own earlier tokens.
 *
 * <p>NOTE: the arrays are not copied (this is built once per engine step on the hot path); the
 * builder hands them over and must not change them afterwards.
 */
public record BatchLayout(
    int[] tokenIds, // [T]
    int[] positions, // [T]
    int[] slotMapping, // [T]
    int[] tokenSeq, // [T]
    int[][] blockTables, // [S][blocks of sequence s]
    int blockSize) {

  public BatchLayout {
    int n = tokenIds.length;
    if (n == 0) {
      throw new IllegalArgumentException("a batch needs at least one token");
    }
    if (positions.length != n || slotMapping.length != n || tokenSeq.length != n) {
      throw new IllegalArgumentException(
          "tokenIds, positions, slotMapping and tokenSeq must all have "
              + n
              + " entries, got "
              + positions.length
              + ", "
              + slotMapping.length
              + ", "
              + tokenSeq.length);
    }
    if (blockSize <= 0) {
      throw new IllegalArgumentException("blockSize must be positive, got " + blockSize);
    }
    for (int t = 0; t < n; t++) {
      int s = tokenSeq[t];
      if (s < 0 || s >= blockTables.length) {
        throw new IllegalArgumentException(
            "token " + t + " names sequence " + s + " but there are " + blockTables.length);
      }
      int p = positions[t];
      if (p < 0 || p / blockSize >= blockTables[s].length) {
        throw new IllegalArgumentException(
            "token "
                + t
                + " at position "
                + p
                + " is beyond the "
                + blockTables[s].length
                + " blocks of sequence "
                + s);
      }
    }
  }

  /** Number of scheduled tokens (rows of every activation buffer). */
  public int numTokens() {
    return tokenIds.length;
  }

  /** The cache slot that position {@code p} of sequence {@code s} lives in. */
  public int slotOf(int s, int p) {
    return blockTables[s][p / blockSize] * blockSize + p % blockSize;
  }

  /**
   * A layout for one sequence whose positions {@code start..start+ids.length-1} are computed now,
   * with its K/V in {@code blockTable}.
   */
  public static BatchLayout singleSequence(int[] ids, int start, int[] blockTable, int blockSize) {
    int n = ids.length;
    int[] positions = new int[n];
    int[] slots = new int[n];
    int[] seq = new int[n];
    for (int i = 0; i < n; i++) {
      int p = start + i;
      positions[i] = p;
      if (p / blockSize >= blockTable.length) {
        throw new IllegalArgumentException(
            "position " + p + " is beyond the " + blockTable.length + " blocks given");
      }
      slots[i] = blockTable[p / blockSize] * blockSize + p % blockSize;
    }
    return new BatchLayout(ids.clone(), positions, slots, seq, new int[][] {blockTable}, blockSize);
  }
}
