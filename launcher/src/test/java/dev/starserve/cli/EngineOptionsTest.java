package dev.starserve.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.backend.KvDType;
import dev.starserve.backend.Quantization;
import dev.starserve.engine.EngineConfig;
import dev.starserve.model.GptBigCodeConfig;
import dev.starserve.model.ModelShape;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** The engine flags parsed as picocli parses them, turned into an engine config. */
class EngineOptionsTest {
  private static final GptBigCodeConfig TINY = ModelShape.TINY.config();

  private static EngineConfig config(String... args) {
    return CommandLine.populateCommand(new EngineOptions(), args).toConfig(TINY);
  }

  @Test
  void kvCacheDtypeDefaultsToFp32AndAcceptsBf16() {
    assertEquals(KvDType.FP32, config().kvCacheDtype());
    assertEquals(KvDType.BF16, config("--kv-cache-dtype", "bf16").kvCacheDtype());
    assertEquals(KvDType.FP32, config("--kv-cache-dtype", "fp32").kvCacheDtype());
  }

  @Test
  void bf16FitsTwiceTheBlocksInTheSameKvCacheMemory() {
    // tiny: 2 layers, multi-query kvDim 16 → K+V per position = 2·2·16 values.
    long fp32PerBlock = 16L * 2 * 2 * 16 * 4;
    assertEquals(fp32PerBlock, 16 * TINY.kvBytesPerToken(KvDType.FP32));
    EngineConfig fp32 = config("--kv-cache-memory", "1m");
    EngineConfig bf16 = config("--kv-cache-memory", "1m", "--kv-cache-dtype", "bf16");
    assertEquals((1 << 20) / fp32PerBlock, fp32.numBlocks());
    assertEquals(2 * fp32.numBlocks(), bf16.numBlocks());
    // an explicit block count is taken as given, whatever the dtype
    assertEquals(64, config("--kv-cache-blocks", "64", "--kv-cache-dtype", "bf16").numBlocks());
    // half a bf16 block does not fit, a whole one does
    assertEquals(
        1,
        config("--kv-cache-memory", Long.toString(fp32PerBlock / 2), "--kv-cache-dtype", "bf16")
            .numBlocks());
    assertThrows(
        IllegalArgumentException.class,
        () -> config("--kv-cache-memory", Long.toString(fp32PerBlock / 2)));
  }

  @Test
  void kvCacheDtypeRejectsOtherNamesNamingTheFlagAndTheAllowedValues() {
    for (String bad : new String[] {"fp16", "garbage", "BF16"}) {
      CommandLine.ParameterException e =
          assertThrows(
              CommandLine.ParameterException.class,
              () -> CommandLine.populateCommand(new EngineOptions(), "--kv-cache-dtype", bad));
      assertTrue(
          e.getMessage()
              .contains(
                  "Invalid value for option '--kv-cache-dtype': must be one of fp32, bf16, got '"
                      + bad
                      + "'"),
          e.getMessage());
    }
  }

  @Test
  void quantizeDefaultsToNoneAcceptsInt8AndRejectsOthersNamingTheFlagAndTheAllowedValues() {
    assertEquals(Quantization.NONE, CommandLine.populateCommand(new EngineOptions()).quantize);
    assertEquals(
        Quantization.INT8,
        CommandLine.populateCommand(new EngineOptions(), "--quantize", "int8").quantize);
    for (String bad : new String[] {"INT8", "int4", "q8_0", ""}) {
      CommandLine.ParameterException e =
          assertThrows(
              CommandLine.ParameterException.class,
              () -> CommandLine.populateCommand(new EngineOptions(), "--quantize", bad));
      assertTrue(
          e.getMessage()
              .contains(
                  "Invalid value for option '--quantize': must be one of none, int8, got '"
                      + bad
                      + "'"),
          e.getMessage());
    }
  }
}
