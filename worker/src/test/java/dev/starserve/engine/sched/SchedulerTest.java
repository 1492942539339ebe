package dev.starserve.engine.sched;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.engine.kv.KvBlockManager;
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
    for (int i = 0; i < b.seqs().size(); i++) {
      Sequence q = b.seqs().get(i);
      boolean samples = b.samples(i);
      s.markComputed(q, b.start()[i] + b.count()[i]);
      if (samples) {
        q.append(7);
      }
    }
  }

  static List<Long> ids(ScheduledBatch b) {
    return b.seqs().stream().map(Sequence::seqId).toList();
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
      assertArrayEquals(new int[] {1, 1, 8}, batch.count()); // 1 + 1 decode, 8 of the prompt
      assertEquals(8 * step, batch.start()[2]);
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
    assertArrayEquals(new int[] {0, 0}, next.start());
    assertArrayEquals(new int[] {9, 1}, next.count());
    assertTrue(next.samples(0), "after recomputing, B samples its next token in the same step");
  }
}
