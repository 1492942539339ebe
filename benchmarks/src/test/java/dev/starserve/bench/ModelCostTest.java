package dev.starserve.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.starserve.model.Activation;
import dev.starserve.model.GptBigCodeConfig;
import org.junit.jupiter.api.Test;

class ModelCostTest {
  // n_embd 64, 4 heads of 16, multi-query (one K/V head), 2 layers, n_inner 256, vocab 1000.
  private static final GptBigCodeConfig CFG =
      new GptBigCodeConfig(64, 4, 2, 256, 128, 1000, true, 1e-5f, Activation.GELU_TANH, true, 0, 0);

  @Test
  void blockMatmulsCountTheFusedMultiQueryProjection() {
    // c_attn 64 -> 64 + 2*16, attn.c_proj 64 -> 64, c_fc 64 -> 256, mlp.c_proj 256 -> 64
    long perLayer = 96 * 64 + 64 * 64 + 64 * 256 + 256 * 64;
    assertEquals(2 * perLayer, new ModelCost(CFG, 1).blockMatmulParams());
  }

  @Test
  void prefillFlopsAreMatmulsPlusCausalAttentionPlusOneLogitsRow() {
    ModelCost cost = new ModelCost(CFG, 1);
    double matmul = 2.0 * 86_016 * 10;
    // per layer: sum over positions i of 4 * (i + 1) * 64 = 4 * 64 * 55
    double attention = 2 * 4.0 * 64 * 55;
    double lmHead = 2.0 * 64 * 1000;
    assertEquals(matmul + attention + lmHead, cost.prefillFlops(10), 1e-6);
  }

  @Test
  void badInputsAreRefused() {
    assertThrows(IllegalArgumentException.class, () -> new ModelCost(CFG, 0));
    assertThrows(IllegalArgumentException.class, () -> new ModelCost(CFG, 1).prefillFlops(0));
  }
}
