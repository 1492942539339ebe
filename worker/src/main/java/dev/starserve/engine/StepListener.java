package dev.starserve.engine;

/**
 * Hears every engine step, on the engine thread: it must return at once and never block. Plain
 * numbers rather than an {@link EngineStats}, so that a steady engine loop allocates nothing for
 * its listener; {@link Engine#stats()} gives the rest.
 */
@FunctionalInterface
public interface StepListener {
  /**
   * @param steps steps since start, this one included
   * @param tokensScheduled tokens this step computed
   * @param stepNanos how long this step took
   * @param kvBlocksUsed KV blocks referenced by sequences after this step
   */
  void onStep(long steps, int tokensScheduled, long stepNanos, int kvBlocksUsed);
}
