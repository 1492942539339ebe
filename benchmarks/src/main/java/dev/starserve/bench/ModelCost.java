package dev.starserve.bench;

import dev.starserve.model.GptBigCodeConfig;
import dev.starserve.model.LanguageModel;

/**
 * What the forward pass of a model costs, for stating measured speeds as fractions of the machine's
 * limits: the bytes of weights one decode step reads, and the floating-point operations of a
 * prefill (multiply and add counted as two).
 *
 * @param config the model's shape
 * @param decodeWeightBytes bytes of weights one decode step reads, as the backend holds them (see
 *     {@link LanguageModel#decodeWeightBytes})
 */
public record ModelCost(GptBigCodeConfig config, long decodeWeightBytes) {
  public ModelCost {
    if (decodeWeightBytes <= 0) {
      throw new IllegalArgumentException("decodeWeightBytes must be > 0, got " + decodeWeightBytes);
    }
  }

  /** The cost of a loaded model, its decode bytes as the backend holds them (int8 or stored). */
  public static ModelCost of(LanguageModel model) {
    return new ModelCost(model.config(), model.decodeWeightBytes());
  }

  /** Weights of the linear layers of all blocks (c_attn, attn.c_proj, c_fc, mlp.c_proj). */
  public long blockMatmulParams() {
    long e = config.nEmbd();
    long perLayer = (long) config.qkvDim() * e + e * e + (long) config.nInner() * e * 2;
    return perLayer * config.nLayer();
  }

  /**
   * FLOPs of a prefill of {@code promptLen} tokens that computes logits for the last one only, as
   * the engine does: the block matmuls for every token, causal attention (each query position
   * {@code i} scores and mixes {@code i + 1} positions, over all heads: {@code 4 · (i + 1) ·
   * n_embd} per layer), and one lm_head row. LayerNorm, GELU and softmax are left out (well under
   * 1%).
   */
  public double prefillFlops(int promptLen) {
    if (promptLen < 1) {
      throw new IllegalArgumentException("promptLen must be >= 1, got " + promptLen);
    }
    double p = promptLen;
    double matmul = 2.0 * blockMatmulParams() * p;
    double attention = 2.0 * config.nEmbd() * p * (p + 1) * config.nLayer();
    double lmHead = 2.0 * config.nEmbd() * (double) config.vocabSize();
    return matmul + attention + lmHead;
  }
}
