package dev.starserve.engine.sched;

import java.util.List;

/**
 * What one engine step computes: for sequence {@code seqs[i]}, its tokens {@code [start[i],
 * start[i] + count[i])}. Plain data, built by {@link Scheduler#schedule()}.
 */
public record ScheduledBatch(List<Sequence> seqs, int[] start, int[] count, int totalTokens) {
  public ScheduledBatch {
    seqs = List.copyOf(seqs);
  }

  public boolean isEmpty() {
    return seqs.isEmpty();
  }

  /** True when this step reaches the end of sequence i's tokens, so it yields a new token. */
  public boolean samples(int i) {
    return start[i] + count[i] == seqs.get(i).numTokens();
  }
}
