package dev.starserve.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.checkpoint.Checkpoint;
import dev.starserve.checkpoint.CheckpointException;
import dev.starserve.checkpoint.DType;
import dev.starserve.checkpoint.HandMadeSafetensors;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Binding against checkpoints written by hand, with shapes spelled out here, not derived. */
class GptBigCodeWeightsTest {

  @TempDir Path dir;

  /** vocab 16, 8 positions, 8 wide, 2 heads (head_dim 4, one K/V head), 2 layers, MLP 12. */
  private static final GptBigCodeConfig CFG =
      new GptBigCodeConfig(8, 2, 2, 12, 8, 16, true, 1e-5f, Activation.GELU_TANH, true, 0, 0);

  /** Every tensor of CFG by HF name (prefix added by the caller): c_attn is 8 + 2·4 = 16 wide. */
  private static Map<String, long[]> tensors(int layers) {
    Map<String, long[]> m = new LinkedHashMap<>();
    m.put("wte.weight", new long[] {16, 8});
    m.put("wpe.weight", new long[] {8, 8});
    for (int i = 0; i < layers; i++) {
      m.put("h." + i + ".ln_1.weight", new long[] {8});
      m.put("h." + i + ".ln_1.bias", new long[] {8});
      m.put("h." + i + ".attn.c_attn.weight", new long[] {16, 8});
      m.put("h." + i + ".attn.c_attn.bias", new long[] {16});
      m.put("h." + i + ".attn.c_proj.weight", new long[] {8, 8});
      m.put("h." + i + ".attn.c_proj.bias", new long[] {8});
      m.put("h." + i + ".ln_2.weight", new long[] {8});
      m.put("h." + i + ".ln_2.bias", new long[] {8});
      m.put("h." + i + ".mlp.c_fc.weight", new long[] {12, 8});
      m.put("h." + i + ".mlp.c_fc.bias", new long[] {12});
      m.put("h." + i + ".mlp.c_proj.weight", new long[] {8, 12});
      m.put("h." + i + ".mlp.c_proj.bias", new long[] {8});
    }
    m.put("ln_f.weight", new long[] {8});
    m.put("ln_f.bias", new long[] {8});
    return m;
  }

  /** Element i of every tensor is (i + 1) / 8, exact in every dtype; tensor k starts at k. */
  private Path write(Map<String, long[]> tensors, String prefix) throws IOException {
    HandMadeSafetensors b = new HandMadeSafetensors();
    int k = 0;
    for (Map.Entry<String, long[]> t : tensors.entrySet()) {
      long n = 1;
      for (long d : t.getValue()) {
        n *= d;
      }
      float[] v = new float[(int) n];
      for (int i = 0; i < v.length; i++) {
        v[i] = k + (i + 1) / 8f;
      }
      String name = t.getKey().startsWith("lm_head") ? t.getKey() : prefix + t.getKey();
      String dtype = name.contains("ln_") ? "F32" : "BF16";
      b.tensor(name, dtype, t.getValue(), v);
      k++;
    }
    return b.writeTo(dir.resolve("model.safetensors"));
  }

  private CheckpointException rejected(GptBigCodeConfig cfg, Path file, String tensor) {
    try (Checkpoint ck = Checkpoint.open(dir)) {
      CheckpointException e =
          assertThrows(CheckpointException.class, () -> GptBigCodeWeights.bind(ck, cfg));
      assertEquals(file, e.file(), e.getMessage());
      assertEquals(tensor, e.tensor(), e.getMessage());
      assertTrue(e.getMessage().startsWith(file + ": tensor '" + tensor + "': "), e.getMessage());
      return e;
    }
  }

  @Test
  void bindsEveryTensorByHuggingFaceNameAndTiesTheLmHead() throws IOException {
    write(tensors(2), "transformer.");
    try (Checkpoint ck = Checkpoint.open(dir)) {
      GptBigCodeWeights w = GptBigCodeWeights.bind(ck, CFG);
      assertEquals("transformer.wte.weight", w.wte().name());
      assertEquals("transformer.wpe.weight", w.wpe().name());
      assertEquals(2, w.layers().size());
      LayerWeights l1 = w.layers().get(1);
      assertEquals("transformer.h.1.ln_1.weight", l1.ln1Weight().name());
      assertEquals("transformer.h.1.attn.c_attn.weight", l1.cAttnWeight().name());
      assertEquals("transformer.h.1.attn.c_proj.bias", l1.attnCProjBias().name());
      assertEquals("transformer.h.1.ln_2.bias", l1.ln2Bias().name());
      assertEquals("transformer.h.1.mlp.c_fc.bias", l1.cFcBias().name());
      assertEquals("transformer.h.1.mlp.c_proj.weight", l1.mlpCProjWeight().name());
      assertEquals("transformer.ln_f.bias", w.lnFBias().name());
      assertTrue(w.tiedLmHead());
      assertSame(w.wte(), w.lmHead());
      // Tensor 14 in file order is h.1.ln_1.weight; mixed dtypes are fine.
      assertEquals(DType.F32, l1.ln1Weight().dtype());
      assertEquals(DType.BF16, l1.cAttnWeight().dtype());
      assertEquals(14 + 3 / 8f, l1.ln1Weight().getFloat(2));
      assertEquals(16 + 128 / 8f, l1.cAttnWeight().getFloat(127));
    }
  }

  @Test
  void bindsNamesWithoutTheTransformerPrefix() throws IOException {
    write(tensors(2), "");
    try (Checkpoint ck = Checkpoint.open(dir)) {
      GptBigCodeWeights w = GptBigCodeWeights.bind(ck, CFG);
      assertEquals("h.0.mlp.c_fc.weight", w.layers().get(0).cFcWeight().name());
      assertEquals("ln_f.weight", w.lnFWeight().name());
    }
  }

  @Test
  void usesASeparateLmHeadWhenTheCheckpointHasOne() throws IOException {
    Map<String, long[]> t = tensors(2);
    t.put("lm_head.weight", new long[] {16, 8});
    write(t, "transformer.");
    try (Checkpoint ck = Checkpoint.open(dir)) {
      GptBigCodeWeights w = GptBigCodeWeights.bind(ck, CFG);
      assertFalse(w.tiedLmHead());
      assertEquals("lm_head.weight", w.lmHead().name());
    }
  }

  @Test
  void ignoresTheCausalMaskBuffersOfOldCheckpoints() throws IOException {
    Map<String, long[]> t = tensors(2);
    t.put("h.0.attn.masked_bias", new long[] {});
    t.put("h.1.attn.bias", new long[] {1, 1, 8, 8});
    write(t, "transformer.");
    try (Checkpoint ck = Checkpoint.open(dir)) {
      assertEquals(2, GptBigCodeWeights.bind(ck, CFG).layers().size());
    }
  }

  @Test
  void rejectsAMissingTensorNamingItsLayer() throws IOException {
    Map<String, long[]> t = tensors(2);
    t.remove("h.1.mlp.c_fc.bias");
    Path f = write(t, "transformer.");
    CheckpointException e = rejected(CFG, f, "transformer.h.1.mlp.c_fc.bias");
    assertTrue(e.getMessage().endsWith("missing tensor (layer 1 of 2)"), e.getMessage());
  }

  @Test
  void aMissingLayerSuggestsCheckingNLayer() throws IOException {
    Path f = write(tensors(2), "transformer.");
    GptBigCodeConfig three =
        new GptBigCodeConfig(8, 2, 3, 12, 8, 16, true, 1e-5f, Activation.GELU_TANH, true, 0, 0);
    CheckpointException e = rejected(three, f, "transformer.h.2.ln_1.weight");
    assertTrue(
        e.getMessage()
            .contains(
                "missing tensor (layer 2 of 3; the checkpoint has layers 0..1: does n_layer in"
                    + " config.json match?)"),
        e.getMessage());
  }

  @Test
  void rejectsATensorOfALayerTheConfigDoesNotHave() throws IOException {
    Map<String, long[]> t = tensors(2);
    t.put("h.2.ln_1.weight", new long[] {8});
    Path f = write(t, "transformer.");
    CheckpointException e = rejected(CFG, f, "transformer.h.2.ln_1.weight");
    assertTrue(
        e.getMessage()
            .endsWith("unexpected tensor: layer 2 but config.json has n_layer=2 (layers 0..1)"),
        e.getMessage());
  }

  @Test
  void rejectsATensorThatIsNoPartOfTheModelCountingAllOfThem() throws IOException {
    Map<String, long[]> t = tensors(2);
    t.put("score.weight", new long[] {2, 8});
    t.put("h.0.attn.rotary.inv_freq", new long[] {4});
    Path f = write(t, "transformer.");
    CheckpointException e = rejected(CFG, f, "transformer.score.weight");
    assertTrue(
        e.getMessage()
            .endsWith(
                "unexpected tensor: not part of a gpt_bigcode model (2 unexpected tensors in all)"),
        e.getMessage());
  }

  @Test
  void rejectsAWrongShapeSayingWhatTheConfigImplies() throws IOException {
    Map<String, long[]> t = tensors(2);
    t.put("h.0.attn.c_attn.weight", new long[] {24, 8}); // multi-head K/V: 8 + 2·8
    Path f = write(t, "transformer.");
    CheckpointException e = rejected(CFG, f, "transformer.h.0.attn.c_attn.weight");
    assertTrue(
        e.getMessage().contains("has shape [24,8], expected [16,8] from config.json"),
        e.getMessage());
    assertTrue(e.getMessage().contains("multi_query=true"), e.getMessage());
  }

  @Test
  void rejectsAnLmHeadOfTheWrongShape() throws IOException {
    Map<String, long[]> t = tensors(2);
    t.put("lm_head.weight", new long[] {15, 8});
    Path f = write(t, "transformer.");
    CheckpointException e = rejected(CFG, f, "lm_head.weight");
    assertTrue(e.getMessage().contains("has shape [15,8], expected [16,8]"), e.getMessage());
  }

  @Test
  void rejectsACheckpointThatMixesPrefixedAndBareNames() throws IOException {
    Map<String, long[]> t = new LinkedHashMap<>();
    tensors(2).forEach((k, v) -> t.put(k.startsWith("h.1.") ? k : "transformer." + k, v));
    Path f = write(t, "");
    CheckpointException e = rejected(CFG, f, "h.1.ln_1.weight");
    assertTrue(
        e.getMessage()
            .contains(
                "mixes names with and without the 'transformer.' prefix (e.g."
                    + " 'transformer.wte.weight' and 'h.1.ln_1.weight')"),
        e.getMessage());
  }
}
