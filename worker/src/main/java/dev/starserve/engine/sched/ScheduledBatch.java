package dev.starserve.engine.sched;

import java.util.Arrays;
import java.util.Objects;

/**
 * What one engine step computes: for sequence {@link #seq(int) seq(i)}, its tokens {@code
 * [start(i), start(i) + count(i))}. Filled by {@link Scheduler#schedule()}.
 *
 * <p>NOTE: not an immutable record, unlike the rest of the scheduler's data: the scheduler refills
 * this one object every step, so that a steady engine loop allocates nothing. It belongs to the
 * engine loop and is valid until the next {@code schedule()}; nothing may keep it longer.
 */
public final class ScheduledBatch {
  private Sequence[] seqs = new Sequence[8]; // [size]
  private int[] start = new int[8]; // [size]
  private int[] count = new int[8]; // [size]
  private int size;
  private int totalTokens;

  void clear() {
    for (int i = 0; i < size; i++) {
      seqs[i] = null; // finished sequences are not kept alive by the last step
    }
    size = 0;
    totalTokens = 0;
  }

  void add(Sequence s, int from, int tokens) {
    if (size == seqs.length) {
      seqs = Arrays.copyOf(seqs, 2 * size);
      start = Arrays.copyOf(start, 2 * size);
      count = Arrays.copyOf(count, 2 * size);
    }
    seqs[size] = s;
    start[size] = from;
    count[size] = tokens;
    size++;
    totalTokens += tokens;
  }

  /** Sequences scheduled in this step. */
  public int size() {
    return size;
  }

  public boolean isEmpty() {
    return size == 0;
  }

  /** The i-th scheduled sequence, in the order the step lays out its tokens. */
  public Sequence seq(int i) {
    return seqs[Objects.checkIndex(i, size)];
  }

  /** Sequence i's first token computed in this step. */
  public int start(int i) {
    return start[Objects.checkIndex(i, size)];
  }

  /** How many of sequence i's tokens this step computes. */
  public int count(int i) {
    return count[Objects.checkIndex(i, size)];
  }

  /** Tokens computed by this step, over all its sequences. */
  public int totalTokens() {
    return totalTokens;
  }

  /** True when this step reaches the end of sequence i's tokens, so it yields a new token. */
  public boolean samples(int i) {
    return start(i) + count(i) == seqs[i].numTokens();
  }
}
