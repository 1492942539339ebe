package dev.starserve.model.parallel;

import dev.starserve.backend.KvCache;
import dev.starserve.backend.KvDType;
import java.util.List;

/**
 * The K/V cache of a tensor-parallel model: one cache per rank, all with the same blocks, so a
 * block id means the same on every rank and the engine's one block manager serves them all.
 *
 * <pre>
 * multi-query: every rank stores the one K/V head          kvDim per rank = headDim (replicated)
 * multi-head:  rank r stores the K/V heads of its queries  kvDim per rank = kvDim / N
 * </pre>
 *
 * {@link #kvDim()} is the whole model's.
 */
public record ShardedKvCache(List<KvCache> ranks, int kvDim) implements KvCache {
  public ShardedKvCache {
    ranks = List.copyOf(ranks);
    if (ranks.isEmpty()) {
      throw new IllegalArgumentException("a sharded cache needs at least one rank");
    }
  }

  /** Rank {@code r}'s cache. */
  public KvCache rank(int r) {
    return ranks.get(r);
  }

  @Override
  public int layers() {
    return ranks.getFirst().layers();
  }

  @Override
  public int numBlocks() {
    return ranks.getFirst().numBlocks();
  }

  @Override
  public int blockSize() {
    return ranks.getFirst().blockSize();
  }

  @Override
  public KvDType dtype() {
    return ranks.getFirst().dtype();
  }
}
