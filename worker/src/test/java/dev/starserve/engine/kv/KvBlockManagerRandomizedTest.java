package dev.starserve.engine.kv;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Drives the manager the way an engine loop does (admit with chunked prefill, compute, decode one
 * token at a time, preempt, finish, re-admit) on a pool small enough that allocations fail, and
 * checks it against a shadow model of what each physical block holds.
 *
 * <p>The shadow records, for every block, the token prefix whose K/V was computed into it ({@code
 * null} once the block is handed out for new tokens). Every cache hit is checked against it: a
 * block reused at admission must hold exactly the newcomer's prefix, and every prefix length {@link
 * KvBlockManager#cachedPrefixLength} reports must be present in some block.
 */
class KvBlockManagerRandomizedTest {
  private static final int OPERATIONS = 4000;
  private static final int VOCAB = 4; // small, so unrelated prompts often agree on a block

  /** A weak hash (2 bits) under which most distinct blocks collide. */
  private static final BlockHasher WEAK =
      (parent, tokens, from, to) -> (parent * 31 + tokens[from]) & 3;

  private static final class Live {
    final long id;
    int[] tokens;
    int[] table;
    int allocated; // tokens covered by allocate calls
    int computed; // tokens whose K/V the "engine" has computed

    Live(long id, int[] tokens) {
      this.id = id;
      this.tokens = tokens;
    }
  }

  private final List<Live> live = new ArrayList<>();
  private final List<int[]> finished = new ArrayList<>();
  private int[][] contents; // [numBlocks] prefix whose K/V the block holds, or null
  private KvBlockManager m;
  private SplittableRandom r;
  private int bs;
  private long nextId = 1;
  private int admitted;
  private int refused;
  private int hitAdmissions;

  @ParameterizedTest(name = "seed {0}: {1} blocks of {2}, weak hash {3}")
  @CsvSource({
    "1, 24, 4, false",
    "2, 12, 2, true",
    "3, 40, 1, false",
    "4, 16, 3, true",
    "5, 9, 4, true",
    "6, 64, 8, false"
  })
  void staysConsistentAndNeverServesWrongKvUnderRandomEngineTraffic(
      long seed, int numBlocks, int blockSize, boolean weakHash) {
    r = new SplittableRandom(seed);
    bs = blockSize;
    m = new KvBlockManager(numBlocks, blockSize, true, weakHash ? WEAK : BlockHasher.DEFAULT);
    contents = new int[numBlocks][];
    int[][] prefixes = new int[4][];
    for (int i = 0; i < prefixes.length; i++) {
      prefixes[i] = randomTokens(bs * (2 + r.nextInt(4)) + r.nextInt(bs));
    }
    for (int op = 0; op < OPERATIONS; op++) {
      int kind = r.nextInt(10);
      if (kind < 2 || live.isEmpty()) {
        int[] p = prefixes[r.nextInt(prefixes.length)];
        int[] prompt =
            concat(Arrays.copyOf(p, r.nextInt(p.length + 1)), randomTokens(r.nextInt(2 * bs)));
        admit(prompt.length == 0 ? randomTokens(1) : prompt);
      } else if (kind == 2 && !finished.isEmpty()) {
        admit(finished.get(r.nextInt(finished.size()))); // same prompt + output again
      } else if (kind < 6) {
        advance(live.get(r.nextInt(live.size())));
      } else if (kind < 8) {
        compute(live.get(r.nextInt(live.size())));
      } else if (kind == 8) {
        finish(live.get(r.nextInt(live.size())));
      } else {
        int[] query = randomTokens(1 + r.nextInt(6 * bs));
        if (r.nextBoolean()) {
          int[] p = prefixes[r.nextInt(prefixes.length)];
          query = concat(p, query);
        }
        checkPresent(query, m.cachedPrefixLength(query));
        m.free(nextId + 1000); // unknown id: no-op
      }
      checkAgainstShadow();
    }
    while (!live.isEmpty()) {
      finish(live.getFirst());
      checkAgainstShadow();
    }
    assertEquals(numBlocks, m.numFreeBlocks());
    assertEquals(0, m.numUsedBlocks());
    m.checkInvariants();
    // The traffic must have exercised what it claims to test.
    assertTrue(admitted > 100, "admitted " + admitted);
    assertTrue(refused > 10, "refused " + refused);
    assertTrue(hitAdmissions > 20, "admissions with a cache hit " + hitAdmissions);
  }

  private void admit(int[] prompt) {
    int hint = m.cachedPrefixLength(prompt);
    checkPresent(prompt, hint);
    int numTokens = Math.min(prompt.length, hint + 1 + r.nextInt(2 * bs));
    int free = m.numFreeBlocks();
    long hitsBefore = m.prefixHitTokens();
    long queriedBefore = m.prefixQueryTokens();
    long id = nextId++;
    if (!m.allocate(id, prompt, numTokens)) {
      refused++;
      assertFalse(m.hasSequence(id));
      assertEquals(free, m.numFreeBlocks());
      assertEquals(hitsBefore, m.prefixHitTokens());
      assertEquals(queriedBefore, m.prefixQueryTokens());
      assertEquals(hint, m.cachedPrefixLength(prompt), "a refused admission evicted something");
      return;
    }
    admitted++;
    int cached = m.cachedTokensAtAdmission(id);
    assertEquals(hint, cached);
    assertEquals(hitsBefore + cached, m.prefixHitTokens());
    assertEquals(queriedBefore + prompt.length, m.prefixQueryTokens());
    int[] table = m.blockTable(id);
    assertEquals(blocksFor(numTokens), table.length);
    for (int i = 0; i < table.length; i++) {
      if (i < cached / bs) {
        assertArrayEquals(
            Arrays.copyOf(prompt, (i + 1) * bs),
            contents[table[i]],
            "block " + table[i] + " reused for positions " + i * bs + ".. holds other K/V");
      } else {
        assertNotHeldByAnyone(table[i], id);
        contents[table[i]] = null; // handed out: its old K/V will be overwritten
      }
    }
    if (cached > 0) {
      hitAdmissions++;
    }
    Live s = new Live(id, prompt);
    s.table = table;
    s.allocated = numTokens;
    s.computed = cached;
    live.add(s);
  }

  /** Next prefill chunk, or one decode token once the whole sequence is computed. */
  private void advance(Live s) {
    int[] tokens = s.tokens;
    int target;
    if (s.computed < tokens.length) {
      target = Math.min(tokens.length, s.allocated + 1 + r.nextInt(2 * bs));
    } else {
      if (tokens.length > 10 * bs) {
        finish(s);
        return;
      }
      tokens = concat(tokens, randomTokens(1));
      target = tokens.length;
    }
    int free = m.numFreeBlocks();
    if (!m.allocate(s.id, tokens, target)) {
      refused++;
      assertArrayEquals(s.table, m.blockTable(s.id));
      assertEquals(free, m.numFreeBlocks());
      if (r.nextBoolean()) {
        finish(s); // preempt; it comes back later through re-admission
      }
      return;
    }
    int[] table = m.blockTable(s.id);
    assertArrayEquals(s.table, Arrays.copyOf(table, s.table.length), "table changed under us");
    for (int i = s.table.length; i < table.length; i++) {
      assertNotHeldByAnyone(table[i], s.id);
      contents[table[i]] = null;
    }
    s.tokens = tokens;
    s.table = table;
    s.allocated = Math.max(s.allocated, target);
  }

  /** Computes every allocated token: writes must land in blocks no other sequence holds. */
  private void compute(Live s) {
    for (int p = s.computed; p < s.allocated; p++) {
      assertNotHeldByAnyone(s.table[p / bs], s.id);
    }
    s.computed = s.allocated;
    for (int i = 0; i < s.computed / bs; i++) {
      int[] prefix = Arrays.copyOf(s.tokens, (i + 1) * bs);
      int b = s.table[i];
      if (contents[b] == null) {
        contents[b] = prefix;
      } else {
        assertArrayEquals(prefix, contents[b], "block " + b + " of sequence " + s.id);
      }
    }
    m.cacheComputedBlocks(s.id, s.tokens, s.computed);
    if (r.nextInt(4) == 0) {
      m.cacheComputedBlocks(s.id, s.tokens, s.computed); // idempotent
    }
  }

  private void finish(Live s) {
    live.remove(s);
    m.free(s.id);
    if (r.nextInt(4) == 0) {
      m.free(s.id); // idempotent
    }
    assertFalse(m.hasSequence(s.id));
    if (s.computed > 0) {
      finished.add(Arrays.copyOf(s.tokens, s.computed));
    }
  }

  /** Every block prefix of {@code tokens} up to {@code length} is held by some block. */
  private void checkPresent(int[] tokens, int length) {
    assertEquals(0, length % bs);
    assertTrue(length <= ((tokens.length - 1) / bs) * bs, "cap violated: " + length);
    for (int end = bs; end <= length; end += bs) {
      int[] prefix = Arrays.copyOf(tokens, end);
      boolean found = false;
      for (int[] c : contents) {
        found |= Arrays.equals(prefix, c);
      }
      if (!found) {
        fail("cachedPrefixLength " + length + " but no block holds the first " + end + " tokens");
      }
    }
  }

  private void assertNotHeldByAnyone(int block, long except) {
    for (Live s : live) {
      if (s.id != except) {
        for (int b : s.table) {
          assertTrue(b != block, "block " + block + " is also held by sequence " + s.id);
        }
      }
    }
  }

  private void checkAgainstShadow() {
    m.checkInvariants();
    Set<Integer> used = new HashSet<>();
    for (Live s : live) {
      assertArrayEquals(s.table, m.blockTable(s.id));
      for (int b : s.table) {
        used.add(b);
      }
    }
    assertEquals(used.size(), m.numUsedBlocks());
    assertEquals(m.numBlocks() - used.size(), m.numFreeBlocks());
  }

  private int blocksFor(int tokens) {
    return (tokens + bs - 1) / bs;
  }

  private int[] randomTokens(int n) {
    int[] t = new int[n];
    for (int i = 0; i < n; i++) {
      t[i] = r.nextInt(VOCAB);
    }
    return t;
  }

  private static int[] concat(int[] a, int[] b) {
    int[] c = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, c, a.length, b.length);
    return c;
  }
}
