package dev.starserve.model.parallel;

import java.util.concurrent.Phaser;

/**
 * Where the tensor-parallel ranks meet: once to start a step, twice in every all-reduce, once at
 * the end. A rank spins briefly (the ranks do the same work, so they usually arrive close together)
 * and then parks.
 *
 * <p>When a rank fails, or the model closes, the barrier is {@linkplain #breakAll broken}: every
 * rank waiting now or later is released at once instead of waiting for a partner that will never
 * come, so one failure can never hang the engine thread.
 */
public final class RankBarrier {
  private static final int SPIN_ITERATIONS = 4096;

  private final Phaser phaser;

  public RankBarrier(int parties) {
    this.phaser = new Phaser(parties);
  }

  /**
   * Waits until every rank has arrived. Actions of each rank before it arrives happen-before the
   * actions of every rank after it returns.
   *
   * @return false when the barrier is broken (the step must be abandoned)
   */
  public boolean await() {
    int phase = phaser.arrive();
    if (phase < 0) {
      return false;
    }
    for (int i = 0; i < SPIN_ITERATIONS && phaser.getPhase() == phase; i++) {
      Thread.onSpinWait();
    }
    return phaser.awaitAdvance(phase) >= 0;
  }

  /** Like {@link #await()}, but throws {@link RankAbortedException} when broken. */
  public void awaitOrAbort() {
    if (!await()) {
      throw new RankAbortedException();
    }
  }

  /** Releases every waiting rank and makes every later wait return false at once. */
  public void breakAll() {
    phaser.forceTermination();
  }

  public boolean broken() {
    return phaser.isTerminated();
  }

  /** Thrown inside a rank to abandon a step because another rank failed or the model closed. */
  public static final class RankAbortedException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    RankAbortedException() {
      super("another tensor-parallel rank failed, or the model was closed", null, false, false);
    }
  }
}
