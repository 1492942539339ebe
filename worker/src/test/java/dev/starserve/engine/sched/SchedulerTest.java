package dev.starserve.engine.sched;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.engine.kv.KvBlockManager;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Step-by-step scheduling decisions on small, hand-checked cases (no model). */
class SchedulerTest {
  static final int BLOCK = 4;

  static Sequence seq(long id, int priority, long arrival, int promptLength) {
    int[] prompt = new int[promptLength];
    for (int i = 0; i < promptLength; i++) {
      prompt[i] = (int) (id * 1000 + i);
    }
    return new Sequence(id, "r" + id, 0, priority, arrival, prompt, false, false, null);
  }

  /** Records what a step computed, as the engine does, and appends a token to the samplers. */
  static void complete(Scheduler s, ScheduledBatch b) {
    for (int i = 0; i < b.size(); i++) {
      Sequence q = b.seq(i);
      boolean samples = b.samples(i);
      s.markComputed(q, b.start(i) + b.count(i));
      if (samples) {
        q.append(7);
      }
    }
  }

  static List<Long> ids(ScheduledBatch b) {
    List<Long> ids = new ArrayList<>();
    for (int i = 0; i < b.size(); i++) {
      ids.add(b.seq(i).seqId());
    }
    return ids;
  }

  static int[] starts(ScheduledBatch b) {
    int[] out = new int[b.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = b.start(i);
    }
    return out;
  }

  static int[] counts(ScheduledBatch b) {
    int[] out = new int[b.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = b.count(i);
    }
    return out;
  }

  @Test
  void decodesGoFirstAndALongPromptTakesWhatIsLeftOfTheBudgetInChunks() {
    KvBlockManager kv = new KvBlockManager(64, BLOCK, false);
    Scheduler s = new Scheduler(new SchedulerConfig(8, 10), kv);
    Sequence a = seq(1, 0, 0, 3);
    Sequence b = seq(2, 0, 1, 3);
    s.add(a);
    s.add(b);
    complete(s, s.schedule()); // both prompts: 6 of 10 tokens
    Sequence longOne = seq(3, 0, 2, 30);
    s.add(longOne);

    for (int step = 0; step < 3; step++) {
      ScheduledBatch batch = s.schedule();
      assertEquals(List.of(1L, 2L, 3L), ids(batch));
      assertArrayEquals(new int[] {1, 1, 8}, counts(batch)); // 1 + 1 decode, 8 of the prompt
      assertEquals(8 * step, batch.start(2));
      assertEquals(10, batch.totalTokens());
      complete(s, batch);
    }
    assertEquals(24, longOne.numComputed());
  }

  @Test
  void maxNumSeqsKeepsTheRestWaitingInPriorityThenArrivalOrder() {
    KvBlockManager kv = new KvBlockManager(64, BLOCK, false);
    Scheduler s = new Scheduler(new SchedulerConfig(2, 100), kv);
    s.add(seq(1, 5, 0, 2));
    s.add(seq(2, 5, 1, 2));
    s.add(seq(3, 0, 2, 2)); // most urgent, arrived last
    s.add(seq(4, 5, 3, 2));

    assertEquals(List.of(3L, 1L), ids(s.schedule()));
    assertEquals(2, s.numRunning());
    assertEquals(2, s.numWaiting());
  }

  @Test
  void theNewestRunningSequenceIsPreemptedAndReturnsAheadOfLaterArrivals() {
    // 4 blocks of 4: A and B take 2 each; to compute position 8, A needs a third.
    KvBlockManager kv = new KvBlockManager(4, BLOCK, false);
    Scheduler s = new Scheduler(new SchedulerConfig(8, 100), kv);
    Sequence a = seq(1, 0, 0, 5);
    Sequence b = seq(2, 0, 1, 5);
    s.add(a);
    s.add(b);
    complete(s, s.schedule()); // prompts (positions 0-4, 2 blocks each): 6 tokens each
    for (int i = 0; i < 3; i++) {
      complete(s, s.schedule()); // decode positions 5, 6, 7: still 2 blocks, 9 tokens each
    }
    Sequence c = seq(3, 0, 2, 1); // arrives later, same priority
    s.add(c);

    ScheduledBatch step = s.schedule(); // A's position 8 needs a third block: B gives its 2 back
    assertEquals(List.of(1L), ids(step));
    assertTrue(s.preemptedLastStep());
    assertEquals(1, s.preemptions());
    assertFalse(kv.hasSequence(b.seqId()));
    assertEquals(0, b.numComputed(), "recompute preemption starts over");
    assertEquals(9, b.numTokens(), "its generated tokens are kept, to be recomputed");
    assertEquals(List.of(1L, 2L, 3L), s.all().stream().map(Sequence::seqId).toList());
    complete(s, step);

    s.finish(a); // frees 3 blocks
    ScheduledBatch next = s.schedule();
    // B comes back before C, which arrived after it, and recomputes all 9 of its tokens
    assertEquals(List.of(2L, 3L), ids(next));
    assertArrayEquals(new int[] {0, 0}, starts(next));
    assertArrayEquals(new int[] {9, 1}, counts(next));
    assertTrue(next.samples(0), "after recomputing, B samples its next token in the same step");
  }

  @Test
  void aSteadyDecodeStepAllocatesNothing() {
    com.sun.management.ThreadMXBean threads =
        (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    KvBlockManager kv = new KvBlockManager(64, 1024, false);
    Scheduler s = new Scheduler(new SchedulerConfig(64, 512), kv);
    for (int i = 0; i < 40; i++) {
      s.add(seq(1000 + i, 0, i, 4)); // ids above 127: a boxed Long key would allocate
    }
    ScheduledBatch first = s.schedule();
    complete(s, first);
    // Warm up, and grow each token array to 640 (it doubles at 20, 40, ..., 320 tokens).
    for (int step = 0; step < 320; step++) {
      complete(s, s.schedule());
    }
    // Five windows of 50 steps: tokens 326..575, within each sequence's one 1024-token block and
    // its token array. NOTE: the least of them is asserted, since the JIT may allocate once in
    // this thread (a deoptimization, say), which a real per-step allocation would not be.
    long least = Long.MAX_VALUE;
    long scheduled = 0;
    for (int window = 0; window < 5; window++) {
      long before = threads.getCurrentThreadAllocatedBytes();
      for (int step = 0; step < 50; step++) {
        ScheduledBatch b = s.schedule();
        scheduled += b.size();
        for (int i = 0; i < b.size(); i++) {
          s.markComputed(b.seq(i), b.start(i) + b.count(i));
          b.seq(i).append(7);
        }
      }
      least = Math.min(least, threads.getCurrentThreadAllocatedBytes() - before);
    }
    assertEquals(40 * 250, scheduled, "every step decodes all 40 sequences");
    assertSame(first, s.schedule(), "the scheduler refills one batch");
    assertEquals(0, least, "bytes allocated by 50 decode steps, least of five windows");
  }
}
