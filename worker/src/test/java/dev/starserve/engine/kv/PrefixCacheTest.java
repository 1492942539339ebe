package dev.starserve.engine.kv;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import org.junit.jupiter.api.Test;

class PrefixCacheTest {

  private static final BlockHasher COLLIDING = (parent, tokens, from, to) -> 42L;

  @Test
  void aChildIsNotFoundUnderItsParentsBlockIdOnceThatBlockHoldsOtherTokens() {
    PrefixCache c = new PrefixCache(4, 2, COLLIDING);
    long oldParent = c.register(0, 42L, PrefixCache.NO_PARENT, new int[] {1, 2}, 0);
    c.register(1, 42L, oldParent, new int[] {3, 4}, 0); // K/V of [1 2][3 4]
    c.evict(0);
    long newParent = c.register(0, 42L, PrefixCache.NO_PARENT, new int[] {5, 6}, 0);
    assertNotEquals(oldParent, newParent);
    // [5 6][3 4]: same key, same tokens, same parent block id; block 1 must not be returned.
    assertEquals(-1, c.find(42L, newParent, new int[] {3, 4}, 0));
    assertEquals(1, c.find(42L, oldParent, new int[] {3, 4}, 0));
    c.checkInvariants();
  }

  @Test
  void findComparesEveryCandidateWithTheSameKeyAndEvictUnlinksFromTheMiddle() {
    PrefixCache c = new PrefixCache(4, 2, COLLIDING);
    for (int b = 0; b < 4; b++) {
      c.register(b, 42L, PrefixCache.NO_PARENT, new int[] {b, b}, 0);
    }
    for (int b = 0; b < 4; b++) {
      assertEquals(b, c.find(42L, PrefixCache.NO_PARENT, new int[] {9, b, b}, 1));
    }
    c.evict(2);
    c.evict(2); // no-op
    assertFalse(c.isCached(2));
    assertEquals(-1, c.find(42L, PrefixCache.NO_PARENT, new int[] {2, 2}, 0));
    assertEquals(3, c.find(42L, PrefixCache.NO_PARENT, new int[] {3, 3}, 0));
    assertEquals(1, c.find(42L, PrefixCache.NO_PARENT, new int[] {1, 1}, 0));
    assertEquals(3, c.size());
    c.checkInvariants();
  }
}
