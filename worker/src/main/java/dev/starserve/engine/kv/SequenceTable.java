package dev.starserve.engine.kv;

/**
 * A map from sequence id to a value, with {@code long} keys that are never boxed: the KV manager
 * looks sequences up several times per sequence per step, and a {@code HashMap<Long, ...>} would
 * allocate a {@code Long} for every lookup of an id above 127. Open addressing with linear probing;
 * a removal shifts the entries after it back, so there are no tombstones.
 */
final class SequenceTable<V> {
  private long[] keys = new long[16]; // [capacity]
  private Object[] values = new Object[16]; // [capacity]; null marks a free slot
  private int size;

  int size() {
    return size;
  }

  @SuppressWarnings("unchecked")
  V get(long key) {
    int mask = keys.length - 1;
    for (int i = slot(key, mask); values[i] != null; i = (i + 1) & mask) {
      if (keys[i] == key) {
        return (V) values[i];
      }
    }
    return null;
  }

  boolean containsKey(long key) {
    return get(key) != null;
  }

  /** Adds or replaces the key's value (which must not be null). */
  void put(long key, V value) {
    if (value == null) {
      throw new IllegalArgumentException("value must not be null");
    }
    if (2 * (size + 1) > keys.length) {
      grow();
    }
    int mask = keys.length - 1;
    int i = slot(key, mask);
    while (values[i] != null) {
      if (keys[i] == key) {
        values[i] = value;
        return;
      }
      i = (i + 1) & mask;
    }
    keys[i] = key;
    values[i] = value;
    size++;
  }

  /** Removes the key; returns its value, or null if it was absent. */
  @SuppressWarnings("unchecked")
  V remove(long key) {
    int mask = keys.length - 1;
    int i = slot(key, mask);
    while (values[i] != null && keys[i] != key) {
      i = (i + 1) & mask;
    }
    if (values[i] == null) {
      return null;
    }
    V old = (V) values[i];
    // Shift back every later entry of the probe run that may sit at or before the hole.
    int hole = i;
    for (int j = (hole + 1) & mask; values[j] != null; j = (j + 1) & mask) {
      int home = slot(keys[j], mask);
      boolean movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
      if (movable) {
        keys[hole] = keys[j];
        values[hole] = values[j];
        hole = j;
      }
    }
    values[hole] = null;
    size--;
    return old;
  }

  /** The keys, in no particular order (a fresh array; for invariant checks). */
  long[] keys() {
    long[] out = new long[size];
    int n = 0;
    for (int i = 0; i < keys.length; i++) {
      if (values[i] != null) {
        out[n++] = keys[i];
      }
    }
    return out;
  }

  private void grow() {
    long[] oldKeys = keys;
    Object[] oldValues = values;
    keys = new long[oldKeys.length * 2];
    values = new Object[oldKeys.length * 2];
    size = 0;
    for (int i = 0; i < oldKeys.length; i++) {
      if (oldValues[i] != null) {
        @SuppressWarnings("unchecked")
        V v = (V) oldValues[i];
        put(oldKeys[i], v);
      }
    }
  }

  private static int slot(long key, int mask) {
    long h = key * 0x9E3779B97F4A7C15L; // Fibonacci hashing spreads consecutive ids
    return (int) (h ^ (h >>> 32)) & mask;
  }
}
