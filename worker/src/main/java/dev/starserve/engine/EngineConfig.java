package dev.starserve.engine;

import dev.starserve.backend.KvDType;
import dev.starserve.engine.sched.SchedulerConfig;
import java.util.Locale;

/**
 * How an engine is sized.
 *
 * @param blockSize token positions per KV block, in [1, 256]
 * @param numBlocks KV blocks in the pool, >= 1
 * @param kvCacheDtype how the KV cache stores K and V
 * @param scheduler per-step limits
 * @param prefixCaching reuse the K/V of full blocks shared with earlier prompts
 */
public record EngineConfig(
    int blockSize,
    int numBlocks,
    KvDType kvCacheDtype,
    SchedulerConfig scheduler,
    boolean prefixCaching) {
  public static final int DEFAULT_BLOCK_SIZE = 16;
  public static final long DEFAULT_KV_CACHE_MEMORY = 1L << 30;

  public EngineConfig {
    if (blockSize < 1 || blockSize > 256) {
      throw new IllegalArgumentException("block_size must be in [1, 256], got " + blockSize);
    }
    if (numBlocks < 1) {
      throw new IllegalArgumentException("the KV cache needs at least 1 block, got " + numBlocks);
    }
    if (kvCacheDtype == null) {
      throw new IllegalArgumentException(
          "kv_cache_dtype is required: one of " + KvDType.allowedNames());
    }
    if (scheduler == null) {
      throw new IllegalArgumentException("scheduler limits are required");
    }
  }

  /**
   * The K/V cache in one log line, e.g. {@code KV cache: 4096 blocks × 16 positions, bf16, 96.0
   * MiB}, for a model whose K/V takes {@code kvBytesPerToken} per position in this dtype.
   */
  public String describeKvCache(long kvBytesPerToken) {
    double mib = (double) numBlocks * blockSize * kvBytesPerToken / (1 << 20);
    return String.format(
        Locale.ROOT,
        "KV cache: %d blocks × %d positions, %s, %.1f MiB",
        numBlocks,
        blockSize,
        kvCacheDtype.cliName(),
        mib);
  }

  /**
   * Blocks that fit in {@code kvCacheBytes} for a model whose K/V takes {@code kvBytesPerToken} per
   * token position (all layers, in the cache's dtype: see {@code
   * GptBigCodeConfig.kvBytesPerToken}).
   */
  public static int blocksForMemory(long kvCacheBytes, int blockSize, long kvBytesPerToken) {
    if (kvCacheBytes <= 0) {
      throw new IllegalArgumentException("kv_cache_memory must be > 0, got " + kvCacheBytes);
    }
    long blocks = kvCacheBytes / ((long) blockSize * kvBytesPerToken);
    if (blocks < 1) {
      throw new IllegalArgumentException(
          "kv_cache_memory "
              + kvCacheBytes
              + " bytes does not hold one block of "
              + blockSize
              + " tokens ("
              + blockSize * kvBytesPerToken
              + " bytes)");
    }
    return (int) Math.min(blocks, Integer.MAX_VALUE);
  }
}
