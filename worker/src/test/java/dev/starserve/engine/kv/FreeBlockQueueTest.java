package dev.starserve.engine.kv;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class FreeBlockQueueTest {

  private static int[] contents(FreeBlockQueue q) {
    List<Integer> out = new ArrayList<>();
    for (int b = q.first(); b != FreeBlockQueue.NONE; b = q.next(b)) {
      out.add(b);
    }
    return out.stream().mapToInt(Integer::intValue).toArray();
  }

  @Test
  void startsWithEveryBlockInIdOrderAndRemovesFromHeadMiddleAndTail() {
    FreeBlockQueue q = new FreeBlockQueue(5);
    assertArrayEquals(new int[] {0, 1, 2, 3, 4}, contents(q));
    q.remove(2);
    q.remove(0);
    q.remove(4);
    assertArrayEquals(new int[] {1, 3}, contents(q));
    assertFalse(q.contains(2));
    q.addLast(2);
    q.addLast(0);
    assertArrayEquals(new int[] {1, 3, 2, 0}, contents(q));
    assertEquals(1, q.popFirst());
    assertEquals(3, q.size());
    q.checkInvariants();
    assertThrows(IllegalStateException.class, () -> q.addLast(3));
    assertThrows(IllegalStateException.class, () -> q.remove(1));
  }

  @Test
  void matchesAListUnderRandomOperations() {
    SplittableRandom r = new SplittableRandom(11);
    int n = 12;
    FreeBlockQueue q = new FreeBlockQueue(n);
    List<Integer> model = new ArrayList<>();
    for (int b = 0; b < n; b++) {
      model.add(b);
    }
    for (int step = 0; step < 5000; step++) {
      int b = r.nextInt(n);
      int op = r.nextInt(3);
      if (op == 0 && !model.isEmpty()) {
        assertEquals(model.remove(0).intValue(), q.popFirst());
      } else if (q.contains(b)) {
        q.remove(b);
        model.remove(Integer.valueOf(b));
      } else {
        q.addLast(b);
        model.add(b);
      }
      assertEquals(model.size(), q.size());
      assertArrayEquals(model.stream().mapToInt(Integer::intValue).toArray(), contents(q));
      q.checkInvariants();
    }
    assertTrue(q.size() <= n);
  }
}
