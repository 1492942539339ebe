package dev.starserve.engine.sched;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.engine.kv.KvBlockManager;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Drives the scheduler and the block manager through thousands of submit / step / abort / finish /
 * expire events without a model, checking after every step that no block leaked or was freed twice,
 * ref counts agree with the block tables, and finished or aborted sequences hold no blocks.
 */
class SchedulerRandomizedTest {

  @ParameterizedTest(name = "seed {0}")
  @ValueSource(longs = {1, 2, 3, 4})
  void blocksAndRequestsStayConsistentThroughRandomTraffic(long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    int blockSize = 4;
    int numBlocks = 24 + r.nextInt(40);
    KvBlockManager kv = new KvBlockManager(numBlocks, blockSize, true);
    Scheduler sched = new Scheduler(new SchedulerConfig(1 + r.nextInt(8), 8 + r.nextInt(40)), kv);
    int[][] prefixes = new int[4][];
    for (int i = 0; i < prefixes.length; i++) {
      prefixes[i] = new int[4 + r.nextInt(24)];
      for (int j = 0; j < prefixes[i].length; j++) {
        prefixes[i][j] = r.nextInt(50);
      }
    }
    Map<Long, Integer> budget = new HashMap<>(); // tokens each sequence may still generate
    List<Sequence> live = new ArrayList<>();
    long seqIds = 0;
    int steps = 0;
    int finished = 0;
    int expiredCount = 0;
    for (int event = 0; event < 3000; event++) {
      int kind = r.nextInt(10);
      if (kind < 3 && live.size() < 40) {
        int[] pre = prefixes[r.nextInt(prefixes.length)];
        int[] prompt = new int[Math.min(pre.length + r.nextInt(12), numBlocks * blockSize / 3)];
        for (int j = 0; j < prompt.length; j++) {
          prompt[j] = j < pre.length ? pre[j] : r.nextInt(50);
        }
        if (prompt.length == 0) {
          continue;
        }
        Sequence s =
            new Sequence(
                seqIds++, "req" + seqIds, 0, r.nextInt(3), event, prompt, true, false, null);
        sched.add(s);
        live.add(s);
        budget.put(s.seqId(), 1 + r.nextInt(20));
      } else if (kind == 3 && !live.isEmpty()) {
        Sequence victim = live.get(r.nextInt(live.size()));
        sched.abort(victim.requestId());
        sched.abort(victim.requestId()); // idempotent
        assertTrue(!kv.hasSequence(victim.seqId()), "an aborted sequence keeps blocks");
        live.remove(victim);
      } else if (kind == 4 && r.nextInt(3) == 0 && !live.isEmpty()) {
        // a time limit passing: the engine finishes the sequence wherever it is (running,
        // waiting, half-way through its prompt, or preempted)
        Sequence expired = live.get(r.nextInt(live.size()));
        sched.finish(expired);
        assertTrue(!kv.hasSequence(expired.seqId()), "an expired sequence keeps blocks");
        assertTrue(!sched.all().contains(expired), "an expired sequence is still scheduled");
        live.remove(expired);
        expiredCount++;
        kv.checkInvariants();
      } else {
        ScheduledBatch b = sched.schedule();
        steps++;
        kv.checkInvariants();
        int tokens = 0;
        assertEquals(b.size() == 0, b.isEmpty());
        for (int i = 0; i < b.size(); i++) {
          Sequence s = b.seq(i);
          tokens += b.count(i);
          assertTrue(b.count(i) >= 1);
          assertEquals(s.numComputed(), b.start(i), "a step starts where the cache ends");
          int[] table = kv.blockTable(s.seqId());
          assertArrayEquals(table, kv.blocks(s.seqId()), "the shared table is the copy");
          assertTrue(
              table.length * blockSize >= b.start(i) + b.count(i),
              "blocks for every scheduled token");
          boolean samples = b.samples(i);
          sched.markComputed(s, b.start(i) + b.count(i));
          if (samples) {
            s.append(r.nextInt(50));
            int left = budget.merge(s.seqId(), -1, Integer::sum);
            if (left <= 0 || r.nextInt(15) == 0) {
              sched.finish(s);
              live.remove(s);
              finished++;
              assertTrue(!kv.hasSequence(s.seqId()), "a finished sequence keeps blocks");
            }
          }
        }
        assertTrue(tokens <= 48, "token budget respected");
        assertEquals(tokens, b.totalTokens());
        kv.checkInvariants();
      }
    }
    for (Sequence s : new ArrayList<>(live)) {
      sched.abort(s.requestId());
    }
    kv.checkInvariants();
    assertEquals(0, sched.numRunning() + sched.numWaiting());
    assertEquals(numBlocks, kv.numFreeBlocks(), "every block returned");
    assertTrue(
        steps > 1000 && finished > 50 && expiredCount > 20, "the traffic exercised the scheduler");
  }
}
