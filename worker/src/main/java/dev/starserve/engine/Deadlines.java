package dev.starserve.engine;

import dev.starserve.engine.sched.Sequence;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.TreeSet;

/**
 * The sequences that have a time limit, soonest deadline first, so that the engine loop finds the
 * expired ones every step in O(expired · log n) without scanning every request, and knows how long
 * it may sleep. Owned by the engine loop thread.
 *
 * <p>Deadlines are {@link System#nanoTime()}-style values: they are only ever compared through
 * their difference, which stays right when the counter wraps.
 */
final class Deadlines {
  private record Entry(long deadlineNanos, Sequence seq) {}

  private static final Comparator<Entry> ORDER =
      (a, b) -> {
        int c = Long.signum(a.deadlineNanos - b.deadlineNanos);
        return c != 0 ? c : Long.compare(a.seq.seqId(), b.seq.seqId());
      };

  private final TreeSet<Entry> entries = new TreeSet<>(ORDER);

  void add(Sequence s, long deadlineNanos) {
    entries.add(new Entry(deadlineNanos, s));
  }

  /** Forgets a sequence (finished for another reason); harmless when it is not here. */
  void remove(Sequence s, long deadlineNanos) {
    entries.remove(new Entry(deadlineNanos, s));
  }

  /** Removes and returns every sequence whose deadline is at or before {@code nowNanos}. */
  List<Sequence> expired(long nowNanos) {
    if (entries.isEmpty() || entries.first().deadlineNanos - nowNanos > 0) {
      return List.of(); // the usual case, every step: no list made
    }
    List<Sequence> out = new ArrayList<>();
    while (!entries.isEmpty() && entries.first().deadlineNanos - nowNanos <= 0) {
      out.add(entries.pollFirst().seq);
    }
    return out;
  }

  /** Nanoseconds until the soonest deadline (0 when past), or {@link Long#MAX_VALUE} when none. */
  long nanosUntilFirst(long nowNanos) {
    return entries.isEmpty()
        ? Long.MAX_VALUE
        : Math.max(0, entries.first().deadlineNanos - nowNanos);
  }

  int size() {
    return entries.size();
  }
}
