package dev.starserve.engine;

/**
 * What the engine loop publishes after every step (for metrics and routing).
 *
 * @param running sequences running
 * @param waiting sequences waiting (new or preempted)
 * @param preemptionsTotal preemptions since start
 * @param kvBlocksUsed KV blocks referenced by sequences
 * @param kvBlocksFree KV blocks free (including cached, evictable ones)
 * @param prefixCacheHitTokensTotal prompt tokens found in the prefix cache since start
 * @param prefixCacheQueryTokensTotal tokens looked up in the prefix cache since start (of which
 *     {@code prefixCacheHitTokensTotal} were found)
 * @param tokensScheduled tokens computed by the last step
 * @param tokensScheduledTotal tokens computed since start (prompt tokens found in the prefix cache
 *     are not computed, recomputed ones after a preemption are)
 * @param stepNanos duration of the last step
 * @param steps steps since start
 */
public record EngineStats(
    int running,
    int waiting,
    long preemptionsTotal,
    int kvBlocksUsed,
    int kvBlocksFree,
    long prefixCacheHitTokensTotal,
    long prefixCacheQueryTokensTotal,
    int tokensScheduled,
    long tokensScheduledTotal,
    long stepNanos,
    long steps) {}
