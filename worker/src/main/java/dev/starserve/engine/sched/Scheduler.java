package dev.starserve.engine.sched;

import dev.starserve.engine.kv.KvBlockManager;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Iterator;
import java.util.List;
import java.util.PriorityQueue;

/**
 * Iteration-level scheduling, as in vLLM v1: there are no prefill and decode phases, only a token
 * budget per step and each sequence's count of computed tokens. Every step serves the running
 * sequences first (one decode token each, or the next chunk of a prompt), then admits waiting ones
 * while budget, sequence slots and KV blocks last.
 *
 * <p>When a running sequence needs a block and none is free, the most recently admitted running
 * sequence is preempted: it gives back all its blocks and returns to the waiting queue, where its
 * original arrival keeps it ahead of later requests, so it cannot starve; when admitted again it
 * recomputes its prompt and the tokens it had generated (recompute preemption), which yields the
 * same K/V as before.
 *
 * <p>Waiting order: lower {@code priority} first, then arrival, then sequence id.
 */
public final class Scheduler {
  private static final Comparator<Sequence> ORDER =
      Comparator.comparingInt(Sequence::priority)
          .thenComparingLong(Sequence::arrival)
          .thenComparingLong(Sequence::seqId);

  private final SchedulerConfig config;
  private final KvBlockManager kv;
  private final PriorityQueue<Sequence> waiting = new PriorityQueue<>(ORDER);
  private final List<Sequence> running = new ArrayList<>();
  private final ScheduledBatch batch = new ScheduledBatch(); // refilled by every schedule()
  private long preemptions;
  private long lastStepPreemptions;

  public Scheduler(SchedulerConfig config, KvBlockManager kv) {
    this.config = config;
    this.kv = kv;
  }

  public void add(Sequence s) {
    waiting.add(s);
  }

  public int numRunning() {
    return running.size();
  }

  public int numWaiting() {
    return waiting.size();
  }

  public boolean hasWork() {
    return !running.isEmpty() || !waiting.isEmpty();
  }

  public long preemptions() {
    return preemptions;
  }

  /**
   * Decides what the next step computes; allocates the KV blocks it needs. The batch is this
   * scheduler's own, refilled by every call: valid until the next one.
   */
  public ScheduledBatch schedule() {
    int budget = config.maxNumBatchedTokens();
    batch.clear();
    boolean preempted = false;

    for (int i = 0; i < running.size() && budget > 0; ) {
      Sequence s = running.get(i);
      int want = Math.min(s.numTokens() - s.numComputed(), budget);
      boolean scheduled = true;
      while (!kv.allocate(s.seqId(), s.tokens(), s.numComputed() + want)) {
        Sequence victim = running.get(running.size() - 1);
        preempt(victim);
        preempted = true;
        if (victim == s) {
          scheduled = false;
          break;
        }
      }
      if (!scheduled) {
        break; // s was the newest; everything after it is gone too
      }
      batch.add(s, s.numComputed(), want);
      budget -= want;
      i++;
    }

    // NOTE: no admissions in a step that had to preempt: the pool is short of blocks.
    while (!preempted && budget > 0 && running.size() < config.maxNumSeqs() && !waiting.isEmpty()) {
      Sequence s = waiting.peek();
      if (!s.ready()) {
        break; // FCFS: a sample waits for its sibling's prompt to be cached
      }
      int[] tokens = Arrays.copyOf(s.tokens(), s.numTokens()); // once per admission
      int cached = s.usePrefixCache() ? kv.cachedPrefixLength(tokens) : 0;
      int want = Math.min(s.numTokens() - cached, budget);
      if (!kv.allocate(s.seqId(), tokens, cached + want, s.usePrefixCache())) {
        break;
      }
      int reused = kv.cachedTokensAtAdmission(s.seqId());
      if (reused != cached) {
        throw new IllegalStateException(
            "prefix cache lookup said " + cached + " tokens, allocation reused " + reused);
      }
      waiting.poll();
      if (s.markAdmitted()) {
        // NOTE: a resumed sequence's cached prefix may run into its resumed tokens; count prompt.
        s.setCachedPromptTokens(Math.min(cached, s.promptLength()));
      }
      s.setNumComputed(cached);
      running.add(s);
      batch.add(s, cached, want);
      budget -= want;
    }
    lastStepPreemptions = preempted ? 1 : 0;
    return batch;
  }

  /** True when the last {@link #schedule()} had to preempt. */
  public boolean preemptedLastStep() {
    return lastStepPreemptions > 0;
  }

  private void preempt(Sequence victim) {
    kv.free(victim.seqId());
    victim.setNumComputed(0);
    running.remove(running.size() - 1);
    waiting.add(victim);
    preemptions++;
  }

  /** After a step: record computed tokens and publish newly full blocks to the prefix cache. */
  public void markComputed(Sequence s, int numComputed) {
    s.setNumComputed(numComputed);
    if (s.usePrefixCache()) {
      kv.cacheComputedBlocks(s.seqId(), s.tokens(), Math.min(numComputed, s.numTokens()));
    }
  }

  /** Removes a finished sequence and frees its blocks. */
  public void finish(Sequence s) {
    s.markFinished();
    kv.free(s.seqId());
    running.remove(s);
    waiting.remove(s);
  }

  /** Removes every sequence of a request (running or waiting), frees their blocks. */
  public List<Sequence> abort(String requestId) {
    List<Sequence> removed = new ArrayList<>();
    for (Iterator<Sequence> it = running.iterator(); it.hasNext(); ) {
      Sequence s = it.next();
      if (s.requestId().equals(requestId)) {
        it.remove();
        removed.add(s);
      }
    }
    for (Iterator<Sequence> it = waiting.iterator(); it.hasNext(); ) {
      Sequence s = it.next();
      if (s.requestId().equals(requestId)) {
        it.remove();
        removed.add(s);
      }
    }
    for (Sequence s : removed) {
      s.markFinished();
      kv.free(s.seqId());
    }
    return removed;
  }

  /** Every sequence, running then waiting (for shutdown). */
  public List<Sequence> all() {
    List<Sequence> all = new ArrayList<>(running);
    all.addAll(waiting);
    return all;
  }
}
