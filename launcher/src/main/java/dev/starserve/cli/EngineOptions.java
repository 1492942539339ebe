package dev.starserve.cli;

import dev.starserve.backend.KvDType;
import dev.starserve.backend.Quantization;
import dev.starserve.engine.EngineConfig;
import dev.starserve.engine.sched.SchedulerConfig;
import dev.starserve.model.GptBigCodeConfig;
import picocli.CommandLine;
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
      converter = KvDTypeConverter.class,
      description =
          "KV storage dtype: fp32, or bf16 (half the bytes per token, so twice the blocks from"
              + " --kv-cache-memory) (default: ${DEFAULT-VALUE})")
  KvDType kvCacheDtype;

  @Option(
      names = "--quantize",
      defaultValue = "none",
      converter = QuantizationConverter.class,
      description =
          "linear-layer weights: none (as stored), or int8 (quantized at load in blocks of 32 with"
              + " one float32 scale each: 1.125 bytes per weight) (default: ${DEFAULT-VALUE})")
  Quantization quantize;

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

  // Tensor parallelism (issue 6): one flag, read by LoadedModel.open.
  @Option(
      names = "--tensor-parallel-size",
      defaultValue = "1",
      converter = TensorParallelSizeConverter.class,
      description =
          "ranks the forward pass is split over: query heads, MLP columns and lm_head rows divided,"
              + " the one K/V head (and the KV cache) replicated on every rank; must divide n_head"
              + " and n_inner. On the cpu backend each rank gets --threads / N compute threads"
              + " (default: ${DEFAULT-VALUE})")
  int tensorParallelSize;

  /** Parses {@code --kv-cache-dtype} while the command line is read, before a model is loaded. */
  static final class KvDTypeConverter implements CommandLine.ITypeConverter<KvDType> {
    @Override
    public KvDType convert(String value) {
      try {
        return KvDType.fromCliName(value);
      } catch (IllegalArgumentException e) {
        // picocli prefixes "Invalid value for option '--kv-cache-dtype': ".
        throw new CommandLine.TypeConversionException(
            "must be one of " + KvDType.allowedNames() + ", got '" + value + "'");
      }
    }
  }

  /** Parses {@code --quantize} while the command line is read, before a model is loaded. */
  static final class QuantizationConverter implements CommandLine.ITypeConverter<Quantization> {
    @Override
    public Quantization convert(String value) {
      try {
        return Quantization.fromCliName(value);
      } catch (IllegalArgumentException e) {
        // picocli prefixes "Invalid value for option '--quantize': ".
        throw new CommandLine.TypeConversionException(
            "must be one of " + Quantization.allowedNames() + ", got '" + value + "'");
      }
    }
  }

  /** Parses {@code --tensor-parallel-size}: at least 1, checked before a model is loaded. */
  static final class TensorParallelSizeConverter implements CommandLine.ITypeConverter<Integer> {
    @Override
    public Integer convert(String value) {
      int n;
      try {
        n = Integer.parseInt(value.trim());
      } catch (NumberFormatException e) {
        throw new CommandLine.TypeConversionException(
            "must be a whole number, got '" + value + "'");
      }
      if (n < 1) {
        // picocli prefixes "Invalid value for option '--tensor-parallel-size': ".
        throw new CommandLine.TypeConversionException("must be >= 1, got " + n);
      }
      return n;
    }
  }

  /** The engine sizing for a model of this shape. */
  EngineConfig toConfig(GptBigCodeConfig shape) {
    int blocks =
        kvCacheBlocks != null
            ? kvCacheBlocks
            : EngineConfig.blocksForMemory(
                kvCacheMemory == null
                    ? EngineConfig.DEFAULT_KV_CACHE_MEMORY
                    : parseBytes(kvCacheMemory),
                blockSize,
                shape.kvBytesPerToken(kvCacheDtype));
    return new EngineConfig(
        blockSize,
        blocks,
        kvCacheDtype,
        new SchedulerConfig(maxNumSeqs, maxNumBatchedTokens),
        prefixCaching);
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
