package dev.starserve.engine.kv;

import java.util.Arrays;
import java.util.Objects;

/**
 * Bookkeeping of the paged KV cache for the engine loop (single-threaded: only the engine loop
 * calls it). It decides which block ids belong to which sequence; the K/V data itself lives in the
 * backend's {@link dev.starserve.backend.KvCache}.
 *
 * <p>Every block is either <em>free</em> (ref count 0, in the {@link FreeBlockQueue} in eviction
 * order) or <em>used</em> (ref count = number of sequences whose block table holds it). A free
 * block may still be cached: it keeps its prefix-cache entry until it is taken from the head of the
 * queue for new tokens. Freed blocks join the tail, so the least recently freed is evicted first.
 *
 * <p>Sharing is safe by construction: only full blocks whose K/V has been computed are entered in
 * the prefix cache, so only those can be shared, and the engine never writes a computed position
 * again. A newcomer reuses at most {@code (tokens.length - 1) / blockSize} blocks, so the position
 * it computes first lies in a block of its own:
 *
 * <pre>
 *   seq A  [ a0 ][ a1 ][ a2 ][ A3.. ]      a0..a2 full, computed, cached
 *   seq B  [ a0 ][ a1 ][ a2 ][ B3.. ]      ref(a0..a2) = 2; B writes only from B3 on
 * </pre>
 *
 * The {@code n > 1} samples of one prompt are separate sequences that share the prompt's full
 * blocks this way.
 *
 * <p>Lack of space is not an error: {@link #allocate} answers {@code false} and changes nothing,
 * and the caller preempts or waits. Misuse (negative counts, unknown sequences where one is
 * required) throws {@link IllegalArgumentException}.
 */
public final class KvBlockManager {
  private final int numBlocks;
  private final int blockSize;
  private final boolean prefixCaching;
  private final int[] refCount; // [numBlocks]
  private final FreeBlockQueue freeQueue;
  private final PrefixCache prefixCache;
  private final SequenceTable<Sequence> sequences = new SequenceTable<>();
  private final int[] hits; // [numBlocks] scratch: blocks of the cached prefix being matched
  private int usedBlocks;
  private long prefixHitTokens;
  private long prefixQueryTokens;

  /** The blocks of one sequence and how far its prefix has been entered in the cache. */
  private static final class Sequence {
    int[] table;
    int length; // blocks in table
    int[] exact; // table[0..length) as its own array, made on demand; null after a change
    int cachedTokens; // found in the cache at admission
    int cachedBlocks; // leading blocks whose prefix has an entry in the cache
    long lastKey = BlockHasher.ROOT; // chain key of block cachedBlocks - 1
    long lastSerial = PrefixCache.NO_PARENT; // entry holding the prefix up to that block

    Sequence(int capacity) {
      table = new int[Math.max(capacity, 4)];
    }

    void add(int block) {
      if (length == table.length) {
        table = Arrays.copyOf(table, length * 2);
      }
      table[length++] = block;
      exact = null;
    }
  }

  public KvBlockManager(int numBlocks, int blockSize, boolean prefixCaching) {
    this(numBlocks, blockSize, prefixCaching, BlockHasher.DEFAULT);
  }

  KvBlockManager(int numBlocks, int blockSize, boolean prefixCaching, BlockHasher hasher) {
    if (numBlocks <= 0) {
      throw new IllegalArgumentException("numBlocks must be positive, got " + numBlocks);
    }
    if (blockSize <= 0) {
      throw new IllegalArgumentException("blockSize must be positive, got " + blockSize);
    }
    this.numBlocks = numBlocks;
    this.blockSize = blockSize;
    this.prefixCaching = prefixCaching;
    refCount = new int[numBlocks];
    freeQueue = new FreeBlockQueue(numBlocks);
    prefixCache = new PrefixCache(numBlocks, blockSize, Objects.requireNonNull(hasher, "hasher"));
    hits = new int[numBlocks];
  }

  public int numBlocks() {
    return numBlocks;
  }

  public int blockSize() {
    return blockSize;
  }

  /** Blocks with ref count 0, including cached ones that are kept until evicted. */
  public int numFreeBlocks() {
    return freeQueue.size();
  }

  public int numUsedBlocks() {
    return usedBlocks;
  }

  /**
   * Length in tokens (a multiple of blockSize) of the longest prefix of {@code tokens} whose full
   * blocks are in the prefix cache, capped at {@code ((tokens.length - 1) / blockSize) * blockSize}
   * so that at least one token is left to compute (its logits are needed). Pure lookup; 0 when
   * prefix caching is off.
   */
  public int cachedPrefixLength(int[] tokens) {
    return matchPrefix(Objects.requireNonNull(tokens, "tokens")) * blockSize;
  }

  /**
   * Gives sequence {@code seqId} blocks for its first {@code numTokens} tokens of {@code tokens}
   * (the sequence's full token list so far: prompt + generated). Only the missing blocks are added;
   * a table never shrinks.
   *
   * <p>On the sequence's first allocation, the blocks of its cached prefix ({@link
   * #cachedPrefixLength}) are reused and reported by {@link #cachedTokensAtAdmission}; they are
   * taken even where they reach beyond {@code numTokens}, since their tokens need no computing.
   *
   * @return false, changing nothing, when there are not enough free blocks
   */
  public boolean allocate(long seqId, int[] tokens, int numTokens) {
    return allocate(seqId, tokens, numTokens, true);
  }

  /**
   * As {@link #allocate(long, int[], int)}; with {@code reusePrefix} false a new sequence takes no
   * cached blocks (a request that wants the logits of every prompt token must compute them all).
   */
  public boolean allocate(long seqId, int[] tokens, int numTokens, boolean reusePrefix) {
    Objects.requireNonNull(tokens, "tokens");
    if (numTokens < 0 || numTokens > tokens.length) {
      throw new IllegalArgumentException(
          "numTokens must be in [0, " + tokens.length + "] (tokens.length), got " + numTokens);
    }
    Sequence seq = sequences.get(seqId);
    return seq == null ? admit(seqId, tokens, numTokens, reusePrefix) : grow(seq, numTokens);
  }

  private boolean admit(long seqId, int[] tokens, int numTokens, boolean reusePrefix) {
    int cached = reusePrefix ? matchPrefix(tokens) : 0; // hits[0..cached)
    int cachedButFree = 0;
    for (int i = 0; i < cached; i++) {
      if (refCount[hits[i]] == 0) {
        cachedButFree++;
      }
    }
    int total = Math.max(blocksFor(numTokens), cached);
    if (cachedButFree + (total - cached) > freeQueue.size()) {
      return false;
    }
    Sequence seq = new Sequence(total);
    // NOTE: the reused blocks leave the free queue before any new block is popped from its head,
    // so popping (which evicts) can never destroy the prefix being reused.
    for (int i = 0; i < cached; i++) {
      int b = hits[i];
      if (refCount[b]++ == 0) {
        freeQueue.remove(b);
        usedBlocks++;
      }
      seq.add(b);
    }
    if (cached > 0) {
      int last = hits[cached - 1];
      seq.lastKey = prefixCache.keyOf(last);
      seq.lastSerial = prefixCache.serialOf(last);
    }
    seq.cachedBlocks = cached;
    seq.cachedTokens = cached * blockSize;
    for (int i = cached; i < total; i++) {
      seq.add(takeFree());
    }
    prefixHitTokens += seq.cachedTokens;
    if (reusePrefix && prefixCaching) {
      prefixQueryTokens += tokens.length;
    }
    sequences.put(seqId, seq);
    return true;
  }

  private boolean grow(Sequence seq, int numTokens) {
    int missing = blocksFor(numTokens) - seq.length;
    if (missing <= 0) {
      return true;
    }
    if (missing > freeQueue.size()) {
      return false;
    }
    for (int i = 0; i < missing; i++) {
      seq.add(takeFree());
    }
    return true;
  }

  /** Pops the least recently freed block, evicting its cache entry, for one sequence's use. */
  private int takeFree() {
    int b = freeQueue.popFirst();
    prefixCache.evict(b);
    refCount[b] = 1;
    usedBlocks++;
    return b;
  }

  /** Fills {@code hits} with the cached prefix of {@code tokens}; returns its length in blocks. */
  private int matchPrefix(int[] tokens) {
    if (!prefixCaching || tokens.length == 0) {
      return 0;
    }
    int maxBlocks = Math.min((tokens.length - 1) / blockSize, numBlocks);
    long key = BlockHasher.ROOT;
    long parent = PrefixCache.NO_PARENT;
    int n = 0;
    while (n < maxBlocks) {
      int from = n * blockSize;
      key = prefixCache.chainKey(key, tokens, from);
      int b = prefixCache.find(key, parent, tokens, from);
      if (b < 0) {
        break;
      }
      hits[n++] = b;
      parent = prefixCache.serialOf(b);
    }
    return n;
  }

  private int blocksFor(int numTokens) {
    return (numTokens + blockSize - 1) / blockSize;
  }

  /** Tokens found in the prefix cache on the sequence's first allocation (0 if none). */
  public int cachedTokensAtAdmission(long seqId) {
    return require(seqId).cachedTokens;
  }

  /**
   * The block ids of the sequence in position order, as a fresh copy: the caller may hand it to a
   * {@link dev.starserve.backend.BatchLayout}, which keeps it, while the table here keeps growing.
   */
  public int[] blockTable(long seqId) {
    return blocks(seqId).clone();
  }

  /**
   * The block ids of the sequence in position order, exactly as many as it holds, without a copy
   * per call: the same array until the sequence gains a block, then a new one. The caller must not
   * change it; an array it was given earlier keeps the blocks of that time.
   */
  public int[] blocks(long seqId) {
    Sequence seq = require(seqId);
    if (seq.exact == null) {
      seq.exact = Arrays.copyOf(seq.table, seq.length);
    }
    return seq.exact;
  }

  /**
   * After a step computed the K/V of the sequence's first {@code numComputedTokens} tokens, enters
   * every newly full block in the prefix cache so that later requests can reuse it. Idempotent; a
   * no-op when prefix caching is off.
   *
   * <p>NOTE: when another block already holds the same prefix (two sequences computed it at the
   * same time), this block is not entered: the index keeps one block per prefix, and the sequence's
   * later blocks are chained onto the existing entry.
   */
  public void cacheComputedBlocks(long seqId, int[] tokens, int numComputedTokens) {
    Objects.requireNonNull(tokens, "tokens");
    Sequence seq = require(seqId);
    int limit = Math.min(tokens.length, seq.length * blockSize);
    if (numComputedTokens < 0 || numComputedTokens > limit) {
      throw new IllegalArgumentException(
          "numComputedTokens must be in [0, "
              + limit
              + "] (tokens given and allocated), got "
              + numComputedTokens);
    }
    if (!prefixCaching) {
      return;
    }
    int full = numComputedTokens / blockSize;
    for (int i = seq.cachedBlocks; i < full; i++) {
      int from = i * blockSize;
      long key = prefixCache.chainKey(seq.lastKey, tokens, from);
      int existing = prefixCache.find(key, seq.lastSerial, tokens, from);
      seq.lastSerial =
          existing >= 0
              ? prefixCache.serialOf(existing)
              : prefixCache.register(seq.table[i], key, seq.lastSerial, tokens, from);
      seq.lastKey = key;
      seq.cachedBlocks = i + 1;
    }
  }

  /**
   * Releases all blocks of the sequence: ref count −1, and a block reaching 0 joins the tail of the
   * free queue, keeping its cache entry until evicted. The last block goes first, so a prefix's
   * first blocks, the most widely shared, are evicted last. Freeing an unknown or already freed id
   * is a no-op.
   */
  public void free(long seqId) {
    Sequence seq = sequences.remove(seqId);
    if (seq == null) {
      return;
    }
    for (int i = seq.length - 1; i >= 0; i--) {
      int b = seq.table[i];
      if (--refCount[b] == 0) {
        freeQueue.addLast(b);
        usedBlocks--;
      }
    }
  }

  public boolean hasSequence(long seqId) {
    return sequences.containsKey(seqId);
  }

  /** Running total of tokens found in the prefix cache at admission. */
  public long prefixHitTokens() {
    return prefixHitTokens;
  }

  /**
   * Running total of tokens looked up in the prefix cache at admission (all the sequence's tokens,
   * of admissions that looked; the denominator of the hit rate {@link #prefixHitTokens}).
   */
  public long prefixQueryTokens() {
    return prefixQueryTokens;
  }

  private Sequence require(long seqId) {
    Sequence seq = sequences.get(seqId);
    if (seq == null) {
      throw new IllegalArgumentException("unknown sequence " + seqId);
    }
    return seq;
  }

  /**
   * Throws {@link IllegalStateException} naming the first violated invariant: every block is either
   * free (in the free queue exactly once, ref 0) or used (ref > 0, not queued); each ref count
   * equals the number of tables holding the block; no table holds a block twice; every index entry
   * points at a block whose stored key matches; numFree + numUsed == numBlocks. For tests.
   */
  public void checkInvariants() {
    freeQueue.checkInvariants();
    prefixCache.checkInvariants();
    int[] expected = new int[numBlocks];
    int[] seenIn = new int[numBlocks]; // stamp of the last table seen holding the block
    int stamp = 0;
    for (long id : sequences.keys()) {
      Sequence seq = sequences.get(id);
      stamp++;
      for (int i = 0; i < seq.length; i++) {
        int b = seq.table[i];
        if (b < 0 || b >= numBlocks) {
          throw new IllegalStateException("sequence " + id + " holds block id " + b);
        }
        if (seenIn[b] == stamp) {
          throw new IllegalStateException("sequence " + id + " holds block " + b + " twice");
        }
        seenIn[b] = stamp;
        expected[b]++;
      }
      if (seq.cachedBlocks > seq.length) {
        throw new IllegalStateException(
            "sequence " + id + " has " + seq.cachedBlocks + " cached of " + seq.length + " blocks");
      }
    }
    int used = 0;
    for (int b = 0; b < numBlocks; b++) {
      if (refCount[b] != expected[b]) {
        throw new IllegalStateException(
            "block " + b + " has ref count " + refCount[b] + " but " + expected[b] + " holders");
      }
      if ((refCount[b] == 0) != freeQueue.contains(b)) {
        throw new IllegalStateException(
            "block "
                + b
                + " has ref count "
                + refCount[b]
                + (freeQueue.contains(b) ? " but is" : " but is not")
                + " in the free queue");
      }
      if (refCount[b] > 0) {
        used++;
      }
    }
    if (used != usedBlocks) {
      throw new IllegalStateException(used + " blocks are used but the count says " + usedBlocks);
    }
    if (freeQueue.size() + usedBlocks != numBlocks) {
      throw new IllegalStateException(
          freeQueue.size() + " free + " + usedBlocks + " used != " + numBlocks + " blocks");
    }
    if (!prefixCaching && prefixCache.size() != 0) {
      throw new IllegalStateException(
          "prefix caching is off but " + prefixCache.size() + " blocks are cached");
    }
  }
}
