package dev.starserve.engine.sched;

/**
 * Limits of one engine step.
 *
 * @param maxNumSeqs sequences running at once, in [1, 4096]
 * @param maxNumBatchedTokens tokens computed in one step (decode tokens plus prefill chunks), in
 *     [1, 1 << 20]; a long prompt is prefilled in chunks of at most this many tokens
 */
public record SchedulerConfig(int maxNumSeqs, int maxNumBatchedTokens) {
  public SchedulerConfig {
    if (maxNumSeqs < 1 || maxNumSeqs > 4096) {
      throw new IllegalArgumentException("max_num_seqs must be in [1, 4096], got " + maxNumSeqs);
    }
    if (maxNumBatchedTokens < 1 || maxNumBatchedTokens > (1 << 20)) {
      throw new IllegalArgumentException(
          "max_num_batched_tokens must be in [1, 1048576], got " + maxNumBatchedTokens);
    }
  }
}
