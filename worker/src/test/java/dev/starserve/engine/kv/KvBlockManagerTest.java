package dev.starserve.engine.kv;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

class KvBlockManagerTest {

  /** Tokens {@code first, first+1, ..., first+n-1}. */
  private static int[] run(int first, int n) {
    return IntStream.range(first, first + n).toArray();
  }

  private static int[] concat(int[]... parts) {
    return Arrays.stream(parts).flatMapToInt(Arrays::stream).toArray();
  }

  /** Admits {@code tokens} whole, computes them and enters the full blocks in the cache. */
  private static int[] admitComputed(KvBlockManager m, long id, int[] tokens) {
    assertTrue(m.allocate(id, tokens, tokens.length));
    m.cacheComputedBlocks(id, tokens, tokens.length);
    m.checkInvariants();
    return m.blockTable(id);
  }

  @Test
  void tableGrowsOneBlockPerBlockSizeTokensAndFreeReturnsEveryBlock() {
    KvBlockManager m = new KvBlockManager(10, 4, false);
    int[] tokens = run(0, 13);
    assertTrue(m.allocate(1, tokens, 10));
    assertArrayEquals(new int[] {0, 1, 2}, m.blockTable(1));
    assertEquals(7, m.numFreeBlocks());
    assertEquals(3, m.numUsedBlocks());
    assertTrue(m.allocate(1, tokens, 12)); // still fits in 3 blocks
    assertEquals(3, m.blockTable(1).length);
    assertTrue(m.allocate(1, tokens, 13)); // position 12 starts block 4
    assertArrayEquals(new int[] {0, 1, 2, 3}, m.blockTable(1));
    assertTrue(m.allocate(1, tokens, 5)); // never shrinks
    assertEquals(4, m.blockTable(1).length);
    assertTrue(m.allocate(2, tokens, 0));
    assertEquals(0, m.blockTable(2).length);
    assertEquals(0, m.prefixQueryTokens()); // no prefix caching, no lookups
    assertEquals(6, m.numFreeBlocks());
    assertEquals(4, m.numUsedBlocks());
    m.checkInvariants();

    m.free(1);
    assertFalse(m.hasSequence(1));
    assertTrue(m.hasSequence(2));
    assertEquals(10, m.numFreeBlocks());
    assertEquals(0, m.numUsedBlocks());
    m.free(1);
    m.free(99);
    m.free(2);
    assertEquals(10, m.numFreeBlocks());
    m.checkInvariants();
  }

  @Test
  void allocateReturnsFalseAndChangesNothingWhenShortOfBlocks() {
    KvBlockManager m = new KvBlockManager(4, 4, true);
    int[] tokens = run(0, 17);
    assertTrue(m.allocate(1, tokens, 9));
    int[] table = m.blockTable(1);

    assertFalse(m.allocate(2, tokens, 8)); // needs 2, 1 free
    assertFalse(m.hasSequence(2));
    assertFalse(m.allocate(1, tokens, 17)); // needs 2 more
    assertArrayEquals(table, m.blockTable(1));
    assertEquals(1, m.numFreeBlocks());
    assertEquals(3, m.numUsedBlocks());
    assertEquals(0, m.prefixHitTokens());
    m.checkInvariants();
    assertTrue(m.allocate(1, tokens, 13)); // the last free block still fits
    assertEquals(0, m.numFreeBlocks());
    m.checkInvariants();
  }

  @Test
  void cachedButFreeBlocksCountAgainstTheFreeBlocksAnAdmissionNeeds() {
    KvBlockManager m = new KvBlockManager(4, 4, true);
    int[] prompt = run(0, 9);
    int[] a = admitComputed(m, 1, prompt);
    m.free(1);
    int[] longer = concat(Arrays.copyOf(prompt, 8), run(100, 9)); // 2 cached + 3 new blocks
    assertFalse(m.allocate(2, longer, longer.length));
    assertFalse(m.hasSequence(2));
    assertEquals(4, m.numFreeBlocks());
    assertEquals(0, m.prefixHitTokens());
    assertEquals(8, m.cachedPrefixLength(longer)); // the failed attempt evicted nothing
    m.checkInvariants();
    assertTrue(m.allocate(2, longer, 13)); // 2 cached + 2 new
    assertArrayEquals(Arrays.copyOf(a, 2), Arrays.copyOf(m.blockTable(2), 2));
    m.checkInvariants();
  }

  @Test
  void misuseThrowsAndTheTableHandedOutIsACopy() {
    KvBlockManager m = new KvBlockManager(4, 4, true);
    int[] tokens = run(0, 5);
    assertThrows(IllegalArgumentException.class, () -> m.allocate(1, tokens, 6));
    assertThrows(IllegalArgumentException.class, () -> m.allocate(1, tokens, -1));
    assertThrows(IllegalArgumentException.class, () -> m.blockTable(1));
    assertThrows(IllegalArgumentException.class, () -> m.cachedTokensAtAdmission(1));
    assertThrows(IllegalArgumentException.class, () -> m.cacheComputedBlocks(1, tokens, 4));
    assertThrows(IllegalArgumentException.class, () -> new KvBlockManager(0, 4, true));
    assertThrows(IllegalArgumentException.class, () -> new KvBlockManager(4, 0, true));
    assertTrue(m.allocate(1, tokens, 4));
    assertThrows(IllegalArgumentException.class, () -> m.cacheComputedBlocks(1, tokens, 5));
    int[] table = m.blockTable(1);
    table[0] = 3;
    assertEquals(0, m.blockTable(1)[0]);
    m.checkInvariants();
  }

  @Test
  void anAdmissionThatDoesNotReuseThePrefixIsNeitherAHitNorALookup() {
    KvBlockManager m = new KvBlockManager(16, 4, true);
    int[] prompt = run(0, 13);
    admitComputed(m, 1, prompt);
    assertEquals(13, m.prefixQueryTokens());
    assertTrue(m.allocate(2, prompt, prompt.length, false));
    assertEquals(0, m.cachedTokensAtAdmission(2));
    assertEquals(0, m.prefixHitTokens());
    assertEquals(13, m.prefixQueryTokens());
    assertTrue(m.allocate(3, prompt, prompt.length));
    assertEquals(12, m.prefixHitTokens());
    assertEquals(26, m.prefixQueryTokens());
    m.checkInvariants();
  }

  @Test
  void secondSequenceWithTheSameThreeFullBlocksGetsTheirIdsAndReportsTheirTokensAsCached() {
    KvBlockManager m = new KvBlockManager(16, 4, true);
    int[] prefix = run(0, 12);
    int[] a = admitComputed(m, 1, concat(prefix, new int[] {100, 101}));
    int[] b = concat(prefix, new int[] {200, 201, 202});
    assertEquals(12, m.cachedPrefixLength(b));
    assertEquals(0, m.prefixHitTokens()); // a lookup alone changes nothing
    assertEquals(14, m.prefixQueryTokens()); // sequence 1 looked and found nothing
    assertTrue(m.allocate(2, b, b.length));
    int[] tb = m.blockTable(2);
    assertArrayEquals(Arrays.copyOf(a, 3), Arrays.copyOf(tb, 3));
    assertNotEquals(a[3], tb[3]);
    assertEquals(12, m.cachedTokensAtAdmission(2));
    assertEquals(0, m.cachedTokensAtAdmission(1));
    assertEquals(12, m.prefixHitTokens());
    assertEquals(14 + 15, m.prefixQueryTokens());
    assertEquals(5, m.numUsedBlocks());
    assertEquals(11, m.numFreeBlocks());
    m.checkInvariants();
  }

  @Test
  void aPromptOfExactlyTwoFullBlocksReusesOnlyOneSoAtLeastOneTokenIsComputed() {
    KvBlockManager m = new KvBlockManager(16, 4, true);
    int[] a = admitComputed(m, 1, run(0, 9));
    int[] exact = run(0, 8);
    assertEquals(4, m.cachedPrefixLength(exact));
    assertEquals(8, m.cachedPrefixLength(run(0, 9)));
    assertEquals(0, m.cachedPrefixLength(run(0, 4)));
    assertEquals(0, m.cachedPrefixLength(new int[0]));
    assertTrue(m.allocate(2, exact, 8));
    int[] t = m.blockTable(2);
    assertEquals(4, m.cachedTokensAtAdmission(2));
    assertEquals(a[0], t[0]);
    assertNotEquals(a[1], t[1]); // block 1 is recomputed into a block of its own
    m.checkInvariants();
  }

  @Test
  void blocksAreReusableOnlyOnceFullAndEnteredAsComputed() {
    KvBlockManager m = new KvBlockManager(16, 4, true);
    int[] tokens = run(0, 13);
    assertTrue(m.allocate(1, tokens, 13));
    assertEquals(0, m.cachedPrefixLength(tokens)); // allocated, not computed
    m.cacheComputedBlocks(1, tokens, 7); // block 1 only half computed
    assertEquals(4, m.cachedPrefixLength(tokens));
    m.cacheComputedBlocks(1, tokens, 12);
    assertEquals(12, m.cachedPrefixLength(tokens));
    m.cacheComputedBlocks(1, tokens, 12); // idempotent
    m.cacheComputedBlocks(1, tokens, 4);
    assertEquals(12, m.cachedPrefixLength(tokens));
    m.checkInvariants();
  }

  @Test
  void freedBlocksStayReusableUntilEvicted() {
    KvBlockManager m = new KvBlockManager(4, 4, true);
    int[] tokens = run(0, 9);
    int[] a = admitComputed(m, 1, tokens);
    m.free(1);
    assertEquals(4, m.numFreeBlocks());
    assertEquals(8, m.cachedPrefixLength(tokens));
    assertTrue(m.allocate(2, tokens, 9));
    assertArrayEquals(Arrays.copyOf(a, 2), Arrays.copyOf(m.blockTable(2), 2));
    assertEquals(8, m.cachedTokensAtAdmission(2));
    m.free(2);
    int[] other = run(1000, 16);
    assertTrue(m.allocate(3, other, 16)); // takes every block, evicting both entries
    m.free(3);
    assertEquals(0, m.cachedPrefixLength(tokens));
    assertTrue(m.allocate(4, tokens, 9));
    assertEquals(0, m.cachedTokensAtAdmission(4));
    m.checkInvariants();
  }

  @Test
  void underPressureTheLeastRecentlyFreedBlocksGoFirstAndAPrefixsFirstBlockLast() {
    KvBlockManager m = new KvBlockManager(8, 2, true);
    int[] ta = run(0, 7);
    int[] tb = run(100, 7);
    int[] a = admitComputed(m, 1, ta); // 3 full blocks + 1 partial
    int[] b = admitComputed(m, 2, tb);
    m.free(1);
    m.free(2); // queue: a3 a2 a1 a0 b3 b2 b1 b0
    int[] other = run(1000, 16);
    int[] expectedA = {6, 4, 2, 0, 0, 0, 0, 0}; // a3 is partial, so never cached
    int[] expectedB = {6, 6, 6, 6, 6, 4, 2, 0};
    int[] order = concat(reversed(a), reversed(b));
    for (int n = 1; n <= 8; n++) {
      assertTrue(m.allocate(3, other, 2 * n));
      assertEquals(order[n - 1], m.blockTable(3)[n - 1], "block taken for token pair " + n);
      assertEquals(expectedA[n - 1], m.cachedPrefixLength(ta), "A after " + n + " taken");
      assertEquals(expectedB[n - 1], m.cachedPrefixLength(tb), "B after " + n + " taken");
      m.checkInvariants();
    }
  }

  @Test
  void reusingAFreedPrefixMakesItRecentSoAnOlderOneIsEvictedFirst() {
    KvBlockManager m = new KvBlockManager(4, 2, true);
    int[] ta = run(0, 3);
    int[] tb = run(100, 3);
    admitComputed(m, 1, ta); // a0 full, a1 partial
    admitComputed(m, 2, tb);
    m.free(1);
    m.free(2); // queue: a1 a0 b1 b0
    assertTrue(m.allocate(3, ta, 3)); // reuses a0, takes a1 back from the head
    m.free(3); // queue: b1 b0 a1 a0
    assertTrue(m.allocate(4, run(1000, 4), 4));
    assertEquals(2, m.cachedPrefixLength(ta));
    assertEquals(0, m.cachedPrefixLength(tb));
    m.checkInvariants();
  }

  @Test
  void samplesOfOnePromptShareItsFullBlocksUntilTheLastOneIsFreed() {
    KvBlockManager m = new KvBlockManager(16, 4, true);
    int[] prompt = run(0, 10);
    int[] first = admitComputed(m, 1, prompt);
    assertTrue(m.allocate(2, prompt, 10));
    assertTrue(m.allocate(3, prompt, 10));
    assertEquals(3 + 1 + 1, m.numUsedBlocks()); // 2 shared + 3 private last blocks
    m.free(1);
    m.free(2);
    assertEquals(3, m.numUsedBlocks());
    assertArrayEquals(Arrays.copyOf(first, 2), Arrays.copyOf(m.blockTable(3), 2));
    m.checkInvariants();
    m.free(3);
    assertEquals(16, m.numFreeBlocks());
    m.checkInvariants();
  }

  @Test
  void withPrefixCachingOffNothingIsEverReused() {
    KvBlockManager m = new KvBlockManager(16, 4, false);
    int[] tokens = run(0, 13);
    int[] a = admitComputed(m, 1, tokens);
    assertEquals(0, m.cachedPrefixLength(tokens));
    assertTrue(m.allocate(2, tokens, 13));
    assertEquals(0, m.cachedTokensAtAdmission(2));
    for (int b : m.blockTable(2)) {
      assertTrue(Arrays.stream(a).noneMatch(x -> x == b));
    }
    m.checkInvariants();
  }

  @Test
  void twoSequencesComputingTheSamePrefixAtOnceKeepOneEntryAndBothContinuationsStayFindable() {
    KvBlockManager m = new KvBlockManager(16, 4, true);
    int[] ta = concat(run(0, 4), run(100, 4), new int[] {7});
    int[] tb = concat(run(0, 4), run(200, 4), new int[] {7});
    assertTrue(m.allocate(1, ta, ta.length));
    assertTrue(m.allocate(2, tb, tb.length)); // no hit yet: block 0 is computed twice
    m.cacheComputedBlocks(1, ta, ta.length);
    m.cacheComputedBlocks(2, tb, tb.length);
    m.checkInvariants();
    int[] a = m.blockTable(1);
    int[] b = m.blockTable(2);
    assertEquals(8, m.cachedPrefixLength(tb));
    assertTrue(m.allocate(3, tb, tb.length));
    int[] c = m.blockTable(3);
    assertEquals(a[0], c[0]); // the entry for the shared first block
    assertEquals(b[1], c[1]); // B's second block, chained onto that entry
    m.checkInvariants();
  }

  /** Every block has the same 64-bit key: only the token and parent comparison tells them apart. */
  private static final BlockHasher COLLIDING = (parent, tokens, from, to) -> 42L;

  @Test
  void underAForcedHashCollisionABlockWithOtherTokensIsNeverReturned() {
    KvBlockManager m = new KvBlockManager(16, 4, true, COLLIDING);
    int[] a = admitComputed(m, 1, concat(run(0, 8), new int[] {9}));
    assertEquals(0, m.cachedPrefixLength(concat(run(50, 4), run(4, 4), new int[] {9})));
    assertEquals(4, m.cachedPrefixLength(concat(run(0, 4), run(60, 4), new int[] {9})));
    assertEquals(8, m.cachedPrefixLength(concat(run(0, 8), new int[] {9})));
    int[] other = concat(run(0, 4), run(60, 4), new int[] {9});
    assertTrue(m.allocate(2, other, other.length));
    int[] t = m.blockTable(2);
    assertEquals(a[0], t[0]);
    assertNotEquals(a[1], t[1]);
    m.checkInvariants();
  }

  @Test
  void underAForcedHashCollisionEqualTokensAfterAnotherParentAreNotReturned() {
    KvBlockManager m = new KvBlockManager(16, 4, true, COLLIDING);
    int[] shared = run(500, 4);
    admitComputed(m, 1, concat(run(0, 4), shared, new int[] {9})); // [a][c]
    int[] b = admitComputed(m, 2, concat(run(100, 4), run(200, 4), new int[] {9})); // [b][d]
    int[] query = concat(run(100, 4), shared, new int[] {9}); // [b][c]: c was computed after a
    assertEquals(4, m.cachedPrefixLength(query));
    assertTrue(m.allocate(3, query, query.length));
    assertEquals(b[0], m.blockTable(3)[0]);
    m.checkInvariants();
  }

  private static int[] reversed(int[] xs) {
    int[] r = new int[xs.length];
    for (int i = 0; i < xs.length; i++) {
      r[i] = xs[xs.length - 1 - i];
    }
    return r;
  }
}
