package dev.starserve.cli;

import dev.starserve.engine.EngineConfig;
import dev.starserve.engine.sched.SchedulerConfig;
import dev.starserve.model.GptBigCodeModel;
import picocli.CommandLine.Option;

/** The engine flags shared by every command that runs an engine. */
final class EngineOptions {
  @Option(
      names = "--kv-cache-memory",
      description = "bytes for the KV cache (suffixes k, m, g), default 1g")
  String kvCacheMemory;

  @Option(names = "--kv-cache-blocks", description = "KV blocks (overrides --kv-cache-memory)")
  Integer kvCacheBlocks;

  @Option(
      names = "--block-size",
      defaultValue = "16",
      description = "token positions per KV block (default: ${DEFAULT-VALUE})")
  int blockSize;

  @Option(
      names = "--kv-cache-dtype",
      defaultValue = "fp32",
      description = "KV storage dtype: fp32 (bf16 is not implemented yet)")
  String kvCacheDtype;

  @Option(
      names = "--max-num-seqs",
      defaultValue = "256",
      description = "sequences running at once (default: ${DEFAULT-VALUE})")
  int maxNumSeqs;

  @Option(
      names = "--max-num-batched-tokens",
      defaultValue = "2048",
      description =
          "tokens per engine step; longer prompts are prefilled in chunks (default: ${DEFAULT-VALUE})")
  int maxNumBatchedTokens;

  @Option(
      names = "--enable-prefix-caching",
      negatable = true,
      defaultValue = "true",
      fallbackValue = "true",
      description = "reuse the KV of shared prompt prefixes (default: on)")
  boolean prefixCaching;

  EngineConfig toConfig(GptBigCodeModel model) {
    if (!kvCacheDtype.equals("fp32")) {
      throw new IllegalArgumentException(
          "--kv-cache-dtype " + kvCacheDtype + " is not implemented yet; only fp32 is");
    }
    int blocks =
        kvCacheBlocks != null
            ? kvCacheBlocks
            : EngineConfig.blocksForMemory(
                kvCacheMemory == null
                    ? EngineConfig.DEFAULT_KV_CACHE_MEMORY
                    : parseBytes(kvCacheMemory),
                blockSize,
                model.kvBytesPerToken());
    return new EngineConfig(
        blockSize, blocks, new SchedulerConfig(maxNumSeqs, maxNumBatchedTokens), prefixCaching);
  }

  static long parseBytes(String s) {
    String t = s.trim().toLowerCase(java.util.Locale.ROOT);
    long mult = 1;
    if (t.endsWith("k") || t.endsWith("m") || t.endsWith("g")) {
      mult =
          switch (t.charAt(t.length() - 1)) {
            case 'k' -> 1L << 10;
            case 'm' -> 1L << 20;
            default -> 1L << 30;
          };
      t = t.substring(0, t.length() - 1);
    }
    try {
      return Math.multiplyExact(Long.parseLong(t), mult);
    } catch (NumberFormatException | ArithmeticException e) {
      throw new IllegalArgumentException(
          "--kv-cache-memory must be a byte count like 2147483648, 512m or 2g, got '" + s + "'");
    }
  }
}
