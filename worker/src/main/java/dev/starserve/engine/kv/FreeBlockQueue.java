package dev.starserve.engine.kv;

/**
 * The free blocks in eviction order: the head is evicted (reused) first, freed blocks join at the
 * tail. An intrusive doubly linked list over two {@code int[]} indexed by block id, so taking a
 * cached free block out of the middle (a prefix-cache hit) is O(1) and no operation allocates.
 *
 * <pre>
 *   head                                     tail
 *    [7] &lt;-&gt; [2] &lt;-&gt; [9] &lt;-&gt; ... &lt;-&gt; [4]
 *   prev[7] = NONE, next[7] = 2, ..., next[4] = NONE;  prev[b] = ABSENT for a block not queued
 * </pre>
 */
final class FreeBlockQueue {
  static final int NONE = -1;
  private static final int ABSENT = -2;

  private final int[] prev; // [numBlocks]
  private final int[] next; // [numBlocks]
  private int head = NONE;
  private int tail = NONE;
  private int size;

  /** A queue holding every block, in id order (block 0 is evicted first). */
  FreeBlockQueue(int numBlocks) {
    prev = new int[numBlocks];
    next = new int[numBlocks];
    for (int b = 0; b < numBlocks; b++) {
      prev[b] = ABSENT;
      next[b] = ABSENT;
      addLast(b);
    }
  }

  int size() {
    return size;
  }

  boolean contains(int block) {
    return prev[block] != ABSENT;
  }

  /** The block evicted next, or {@link #NONE} when the queue is empty. */
  int first() {
    return head;
  }

  /** The block after {@code block} in eviction order, or {@link #NONE}; for walking the queue. */
  int next(int block) {
    return next[block];
  }

  /** Removes and returns the head; the caller checks {@link #size()} first. */
  int popFirst() {
    if (head == NONE) {
      throw new IllegalStateException("the free block queue is empty");
    }
    int b = head;
    remove(b);
    return b;
  }

  void addLast(int block) {
    if (contains(block)) {
      throw new IllegalStateException("block " + block + " is already in the free queue");
    }
    prev[block] = tail;
    next[block] = NONE;
    if (tail == NONE) {
      head = block;
    } else {
      next[tail] = block;
    }
    tail = block;
    size++;
  }

  void remove(int block) {
    if (!contains(block)) {
      throw new IllegalStateException("block " + block + " is not in the free queue");
    }
    int p = prev[block];
    int n = next[block];
    if (p == NONE) {
      head = n;
    } else {
      next[p] = n;
    }
    if (n == NONE) {
      tail = p;
    } else {
      prev[n] = p;
    }
    prev[block] = ABSENT;
    next[block] = ABSENT;
    size--;
  }

  /** Throws if the links are inconsistent; returns normally otherwise. For tests. */
  void checkInvariants() {
    int count = 0;
    int before = NONE;
    for (int b = head; b != NONE; b = next[b]) {
      if (b < 0 || b >= prev.length) {
        throw new IllegalStateException("free queue links to block " + b + " out of range");
      }
      if (prev[b] != before) {
        throw new IllegalStateException(
            "free queue: prev of block " + b + " is " + prev[b] + ", expected " + before);
      }
      if (++count > prev.length) {
        throw new IllegalStateException("free queue has a cycle");
      }
      before = b;
    }
    if (before != tail) {
      throw new IllegalStateException(
          "free queue: walk ends at block " + before + " but tail is " + tail);
    }
    if (count != size) {
      throw new IllegalStateException(
          "free queue: walk counts " + count + " blocks but size is " + size);
    }
    int marked = 0;
    for (int b = 0; b < prev.length; b++) {
      if (contains(b)) {
        marked++;
      }
    }
    if (marked != size) {
      throw new IllegalStateException(
          "free queue: " + marked + " blocks are marked queued but " + size + " are linked");
    }
  }
}
