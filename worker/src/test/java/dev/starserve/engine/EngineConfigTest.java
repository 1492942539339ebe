package dev.starserve.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.backend.KvDType;
import dev.starserve.engine.sched.SchedulerConfig;
import dev.starserve.model.GptBigCodeConfig;
import dev.starserve.model.ModelShape;
import org.junit.jupiter.api.Test;

class EngineConfigTest {
  private static final SchedulerConfig LIMITS = new SchedulerConfig(8, 256);

  @Test
  void bf16HalvesTheBytesPerTokenSoTheSameMemoryHoldsTwiceTheBlocks() {
    GptBigCodeConfig m = ModelShape.TINY_STARCODER_PY.config();
    long fp32 = m.kvBytesPerToken(KvDType.FP32);
    assertEquals(2L * m.nLayer() * m.kvDim() * 4, fp32);
    assertEquals(fp32 / 2, m.kvBytesPerToken(KvDType.BF16));
    long bf16 = m.kvBytesPerToken(KvDType.BF16);
    // A whole number of fp32 blocks: exactly twice the bf16 blocks.
    long memory = 1000 * 16 * fp32;
    assertEquals(1000, EngineConfig.blocksForMemory(memory, 16, fp32));
    assertEquals(2000, EngineConfig.blocksForMemory(memory, 16, bf16));
    // The default 1 GiB: each count rounds down on its own (6553 fp32 blocks, 13107 bf16).
    memory = EngineConfig.DEFAULT_KV_CACHE_MEMORY;
    assertEquals(6553, EngineConfig.blocksForMemory(memory, 16, fp32));
    assertEquals(13107, EngineConfig.blocksForMemory(memory, 16, bf16));
  }

  @Test
  void theLogLineNamesBlocksPositionsDtypeAndSize() {
    GptBigCodeConfig m = ModelShape.TINY.config();
    EngineConfig c = new EngineConfig(16, 4096, KvDType.BF16, LIMITS, true);
    // tiny: 2 layers × (K + V) × kvDim 16 × 2 bytes = 128 bytes per position
    assertEquals(
        "KV cache: 4096 blocks × 16 positions, bf16, 8.0 MiB",
        c.describeKvCache(m.kvBytesPerToken(KvDType.BF16)));
  }

  @Test
  void aMissingKvDtypeIsRejectedNamingTheAllowedValues() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class, () -> new EngineConfig(16, 4, null, LIMITS, true));
    assertTrue(e.getMessage().contains("fp32, bf16"), e.getMessage());
  }
}
