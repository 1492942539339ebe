package dev.starserve.engine.kv;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The unboxed sequence map against {@link HashMap} under random puts, gets and removals. */
class SequenceTableTest {
  @ParameterizedTest
  @ValueSource(longs = {1, 2, 3})
  void behavesLikeAHashMapUnderRandomTraffic(long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    SequenceTable<String> table = new SequenceTable<>();
    Map<Long, String> reference = new HashMap<>();
    // Keys from a small range collide and form long probe runs; some are far apart or negative.
    for (int op = 0; op < 200_000; op++) {
      long key =
          switch (r.nextInt(4)) {
            case 0 -> r.nextLong();
            case 1 -> r.nextInt(64) * 1024L; // equal low bits
            default -> r.nextInt(600);
          };
      int kind = r.nextInt(10);
      if (kind < 4) {
        String v = "v" + op;
        table.put(key, v);
        reference.put(key, v);
      } else if (kind < 7) {
        assertEquals(reference.remove(key), table.remove(key), "remove " + key);
      } else {
        assertEquals(reference.get(key), table.get(key), "get " + key);
        assertEquals(reference.containsKey(key), table.containsKey(key));
      }
      assertEquals(reference.size(), table.size());
      if (op % 5_000 == 0) {
        for (Map.Entry<Long, String> e : reference.entrySet()) {
          assertEquals(e.getValue(), table.get(e.getKey()), "get " + e.getKey());
        }
        long[] keys = table.keys();
        Arrays.sort(keys);
        assertArrayEquals(
            reference.keySet().stream().mapToLong(Long::longValue).sorted().toArray(), keys);
      }
    }
    for (Long k : reference.keySet().toArray(new Long[0])) {
      assertEquals(reference.remove(k), table.remove(k));
    }
    assertEquals(0, table.size());
    assertNull(table.get(0));
  }

  @ParameterizedTest
  @ValueSource(longs = {7})
  void aNullValueIsRefusedWithAMessage(long key) {
    SequenceTable<String> table = new SequenceTable<>();
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> table.put(key, null));
    assertEquals("value must not be null", e.getMessage());
  }
}
