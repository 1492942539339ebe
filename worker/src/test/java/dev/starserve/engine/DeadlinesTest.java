package dev.starserve.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.starserve.engine.sched.Sequence;
import java.util.List;
import org.junit.jupiter.api.Test;

class DeadlinesTest {
  static Sequence seq(long id) {
    return new Sequence(id, "r" + id, 0, 0, id, new int[] {1}, false, false, null);
  }

  @Test
  void expiredReturnsThePastDeadlinesSoonestFirstAndKeepsTheRest() {
    Deadlines d = new Deadlines();
    Sequence a = seq(1);
    Sequence b = seq(2);
    Sequence c = seq(3);
    Sequence tie = seq(4);
    d.add(c, 300);
    d.add(a, 100);
    d.add(b, 200);
    d.add(tie, 200);

    assertEquals(List.of(), d.expired(99));
    assertEquals(1, d.nanosUntilFirst(99));
    assertEquals(List.of(a, b, tie), d.expired(200)); // at the deadline counts as past
    assertEquals(1, d.size());
    assertEquals(0, d.nanosUntilFirst(1000));
    assertEquals(List.of(c), d.expired(1000));
    assertEquals(Long.MAX_VALUE, d.nanosUntilFirst(1000));
  }

  @Test
  void removedSequencesNeverExpireAndRemovingTwiceIsHarmless() {
    Deadlines d = new Deadlines();
    Sequence a = seq(1);
    Sequence b = seq(2);
    d.add(a, 100);
    d.add(b, 100);

    d.remove(a, 100);
    d.remove(a, 100);

    assertEquals(List.of(b), d.expired(500));
    assertEquals(0, d.size());
  }

  @Test
  void deadlinesAreComparedByDifferenceSoANanoTimeWrapKeepsTheOrder() {
    Deadlines d = new Deadlines();
    Sequence beforeWrap = seq(1);
    Sequence afterWrap = seq(2);
    long now = Long.MAX_VALUE - 50;
    d.add(afterWrap, now + 100); // wraps to a large negative number
    d.add(beforeWrap, now + 10);

    assertEquals(List.of(), d.expired(now));
    assertEquals(10, d.nanosUntilFirst(now));
    assertEquals(List.of(beforeWrap), d.expired(now + 20));
    assertEquals(List.of(afterWrap), d.expired(now + 100));
  }
}
