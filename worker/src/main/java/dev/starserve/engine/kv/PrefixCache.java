package dev.starserve.engine.kv;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * Which full blocks hold the K/V of which token prefix. Only the index: ref counts and the free
 * queue belong to {@link KvBlockManager}.
 *
 * <p>Each cached block is one <em>entry</em> with a serial number that is never reused. An entry
 * stores its chained hash, its token ids and the serial of its parent entry (the block before it in
 * the prefix; {@link #NO_PARENT} for a first block):
 *
 * <pre>
 *   prefix  [t0 .. t3][t4 .. t7][t8 .. t11]      blockSize = 4
 *   entry    #12       #15       #31             serial
 *   parent   0         #12       #15             parentSerial
 *   key      h1=H(ROOT,t0..3)  h2=H(h1,t4..7)  h3=H(h2,t8..11)
 * </pre>
 *
 * A lookup accepts a candidate only if its token ids and its parent serial both match, so by
 * induction a hit holds exactly the K/V of the queried prefix, whatever the 64-bit hash does.
 *
 * <p>NOTE: parents are matched by serial, not by block id: block ids are reused after eviction, so
 * a child whose parent block was evicted and refilled with other tokens would otherwise be found
 * under the new parent. With serials such an orphan is simply unreachable until it is evicted.
 */
final class PrefixCache {
  /** Parent serial of a first block (serials start at 1). */
  static final long NO_PARENT = 0;

  private static final int END = -1;

  private final int blockSize;
  private final BlockHasher hasher;
  private final Map<Long, Integer> chainHead = new HashMap<>(); // key -> first block with that key
  private final int[] chainNext; // [numBlocks] next block with the same key, END at the end
  private final long[] serial; // [numBlocks] 0 when the block is not cached
  private final long[] key; // [numBlocks]
  private final long[] parentSerial; // [numBlocks]
  private final int[] tokens; // [numBlocks * blockSize] token ids of each cached block
  private long lastSerial = NO_PARENT;
  private int size;

  PrefixCache(int numBlocks, int blockSize, BlockHasher hasher) {
    this.blockSize = blockSize;
    this.hasher = hasher;
    chainNext = new int[numBlocks];
    serial = new long[numBlocks];
    key = new long[numBlocks];
    parentSerial = new long[numBlocks];
    tokens = new int[Math.multiplyExact(numBlocks, blockSize)];
    Arrays.fill(chainNext, END);
  }

  /**
   * Key of the block {@code ids[from..from+blockSize)} that follows a block keyed {@code
   * parentKey}.
   */
  long chainKey(long parentKey, int[] ids, int from) {
    return hasher.hash(parentKey, ids, from, from + blockSize);
  }

  /**
   * The cached block holding {@code ids[from..from+blockSize)} after the entry {@code parent}, or
   * -1.
   */
  int find(long blockKey, long parent, int[] ids, int from) {
    Integer head = chainHead.get(blockKey);
    for (int b = head == null ? END : head; b != END; b = chainNext[b]) {
      if (parentSerial[b] == parent
          && Arrays.equals(
              tokens, b * blockSize, (b + 1) * blockSize, ids, from, from + blockSize)) {
        return b;
      }
    }
    return -1;
  }

  /** Makes {@code block} the entry for {@code ids[from..from+blockSize)} after {@code parent}. */
  long register(int block, long blockKey, long parent, int[] ids, int from) {
    if (serial[block] != 0) {
      throw new IllegalStateException("block " + block + " is already cached");
    }
    serial[block] = ++lastSerial;
    key[block] = blockKey;
    parentSerial[block] = parent;
    System.arraycopy(ids, from, tokens, block * blockSize, blockSize);
    Integer head = chainHead.put(blockKey, block);
    chainNext[block] = head == null ? END : head;
    size++;
    return serial[block];
  }

  /** Drops the entry of {@code block} (its K/V is about to be overwritten); no-op if none. */
  void evict(int block) {
    if (serial[block] == 0) {
      return;
    }
    Long k = key[block];
    int head = chainHead.get(k);
    if (head == block) {
      if (chainNext[block] == END) {
        chainHead.remove(k);
      } else {
        chainHead.put(k, chainNext[block]);
      }
    } else {
      int b = head;
      while (chainNext[b] != block) {
        b = chainNext[b];
      }
      chainNext[b] = chainNext[block];
    }
    chainNext[block] = END;
    serial[block] = 0;
    size--;
  }

  boolean isCached(int block) {
    return serial[block] != 0;
  }

  long serialOf(int block) {
    return serial[block];
  }

  long keyOf(int block) {
    return key[block];
  }

  int size() {
    return size;
  }

  /** Throws if an index entry disagrees with its block; returns normally otherwise. For tests. */
  void checkInvariants() {
    int reachable = 0;
    for (Map.Entry<Long, Integer> e : chainHead.entrySet()) {
      int steps = 0;
      for (int b = e.getValue(); b != END; b = chainNext[b]) {
        if (serial[b] == 0) {
          throw new IllegalStateException(
              "prefix cache: key " + e.getKey() + " lists block " + b + ", which is not cached");
        }
        if (key[b] != e.getKey()) {
          throw new IllegalStateException(
              "prefix cache: key "
                  + e.getKey()
                  + " lists block "
                  + b
                  + ", whose stored key is "
                  + key[b]);
        }
        if (parentSerial[b] >= serial[b]) {
          throw new IllegalStateException(
              "prefix cache: block " + b + " is older than its parent entry " + parentSerial[b]);
        }
        if (++steps > serial.length) {
          throw new IllegalStateException("prefix cache: chain of key " + e.getKey() + " cycles");
        }
        reachable++;
      }
    }
    int cached = 0;
    for (long s : serial) {
      if (s != 0) {
        cached++;
      }
    }
    if (reachable != cached || cached != size) {
      throw new IllegalStateException(
          "prefix cache: "
              + cached
              + " blocks are cached, "
              + reachable
              + " are reachable from the index, size says "
              + size);
    }
  }
}
