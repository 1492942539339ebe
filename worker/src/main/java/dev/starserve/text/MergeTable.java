package dev.starserve.text;

/**
 * BPE merge rules as an open-addressing hash map from a token pair (left id, right id) to its rank
 * (its position in the merges list, lower merges first) and the id of the merged token. Primitive
 * keys, so that the merge loop neither boxes nor allocates.
 */
final class MergeTable {
  private static final long EMPTY = -1L;

  private final long[] keys; // (left << 32) | right, or EMPTY
  private final int[] ranks;
  private final int[] results; // rank → merged token id
  private final int mask;

  MergeTable(int[] lefts, int[] rights, int[] mergedIds) {
    int n = lefts.length;
    int capacity = Integer.highestOneBit(Math.max(4, n * 2 - 1)) << 1;
    keys = new long[capacity];
    ranks = new int[capacity];
    java.util.Arrays.fill(keys, EMPTY);
    mask = capacity - 1;
    results = mergedIds.clone();
    for (int rank = 0; rank < n; rank++) {
      long key = key(lefts[rank], rights[rank]);
      int slot = slot(key);
      // NOTE: a pair listed twice keeps its last rank, like HF's HashMap collect.
      keys[slot] = key;
      ranks[slot] = rank;
    }
  }

  /** The rank of merging {@code left} with {@code right}, or -1 when no rule merges them. */
  int rank(int left, int right) {
    long key = key(left, right);
    for (int i = mix(key) & mask; ; i = (i + 1) & mask) {
      long k = keys[i];
      if (k == key) {
        return ranks[i];
      }
      if (k == EMPTY) {
        return -1;
      }
    }
  }

  /** The token id a merge of the given rank produces. */
  int result(int rank) {
    return results[rank];
  }

  private int slot(long key) {
    int i = mix(key) & mask;
    while (keys[i] != EMPTY && keys[i] != key) {
      i = (i + 1) & mask;
    }
    return i;
  }

  private static long key(int left, int right) {
    return ((long) left << 32) | (right & 0xFFFFFFFFL);
  }

  private static int mix(long key) {
    long h = key * 0x9E3779B97F4A7C15L;
    return (int) (h ^ (h >>> 32));
  }
}
