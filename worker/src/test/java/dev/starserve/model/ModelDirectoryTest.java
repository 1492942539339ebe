package dev.starserve.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.checkpoint.CheckpointException;
import dev.starserve.checkpoint.DType;
import dev.starserve.checkpoint.TensorView;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelDirectoryTest {

  @TempDir Path tmp;
  private Path model;

  @BeforeEach
  void writeTinyModel() throws IOException {
    model = tmp.resolve("tiny-model");
    RandomModelWriter.write(model, ModelShape.TINY.config(), DType.BF16, 3, 0.02, 1);
  }

  private CheckpointException rejected(Path expectedFile, String... fragments) {
    CheckpointException e =
        assertThrows(CheckpointException.class, () -> ModelDirectory.open(model));
    assertEquals(expectedFile, e.file(), e.getMessage());
    assertTrue(e.getMessage().startsWith(expectedFile + ": "), e.getMessage());
    for (String f : fragments) {
      assertTrue(e.getMessage().contains(f), () -> "'" + f + "' not in: " + e.getMessage());
    }
    return e;
  }

  @Test
  void exposesConfigWeightsTokenizerPathsAndIdentity() {
    try (ModelDirectory md = ModelDirectory.open(model)) {
      assertEquals(model, md.dir());
      assertEquals("tiny-model", md.modelId());
      assertEquals(ModelShape.TINY.config(), md.config());
      assertEquals(2, md.weights().layers().size());
      assertEquals(model.resolve("tokenizer.json"), md.tokenizerJson());
      assertEquals(model.resolve("tokenizer_config.json"), md.tokenizerConfigJson());
      assertArrayEquals(new int[] {0}, md.eosTokenIds());
      assertEquals(0, md.bosTokenId());
      assertEquals(model, md.checkpoint().dir());
    }
  }

  @Test
  void closingUnmapsTheWeights() {
    TensorView wte;
    try (ModelDirectory md = ModelDirectory.open(model)) {
      wte = md.weights().wte();
      assertTrue(Float.isFinite(wte.getFloat(0)));
    }
    assertThrows(IllegalStateException.class, () -> wte.getFloat(0));
  }

  @Test
  void mergesEosIdsFromConfigAndGenerationConfigAndPrefersItsBos() throws IOException {
    Files.writeString(
        model.resolve("generation_config.json"),
        "{\"bos_token_id\": 1, \"eos_token_id\": [49, 0, 2]}");
    try (ModelDirectory md = ModelDirectory.open(model)) {
      assertArrayEquals(new int[] {0, 49, 2}, md.eosTokenIds());
      assertEquals(1, md.bosTokenId());
    }
  }

  @Test
  void generationConfigIsOptionalAndSoIsTokenizerConfig() throws IOException {
    Files.delete(model.resolve("generation_config.json"));
    Files.delete(model.resolve("tokenizer_config.json"));
    try (ModelDirectory md = ModelDirectory.open(model)) {
      assertArrayEquals(new int[] {0}, md.eosTokenIds());
      assertNull(md.tokenizerConfigJson());
    }
  }

  @Test
  void rejectsAGenerationConfigEosOutsideTheVocabulary() throws IOException {
    Files.writeString(model.resolve("generation_config.json"), "{\"eos_token_id\": 50256}");
    rejected(
        model.resolve("generation_config.json"),
        "eos_token_id 50256 is outside the vocabulary [0, 49152)");
  }

  @Test
  void rejectsAMissingConfigJson() throws IOException {
    Files.delete(model.resolve("config.json"));
    rejected(model.resolve("config.json"), "config.json does not exist");
  }

  @Test
  void rejectsAnotherArchitecture() throws IOException {
    Path cfg = model.resolve("config.json");
    Files.writeString(cfg, Files.readString(cfg).replace("\"gpt_bigcode\"", "\"llama\""));
    rejected(cfg, "unknown model_type 'llama': StarServe serves gpt_bigcode models");
  }

  @Test
  void rejectsAMissingTokenizerNamingTheDirectory() throws IOException {
    Files.delete(model.resolve("tokenizer.json"));
    rejected(model, "no tokenizer.json");
  }

  @Test
  void rejectsMissingWeights() throws IOException {
    Files.delete(model.resolve("model.safetensors"));
    rejected(model, "no weights: looked for model.safetensors and model.safetensors.index.json");
  }

  @Test
  void rejectsAConfigThatDoesNotMatchTheWeights() throws IOException {
    Path cfg = model.resolve("config.json");
    Files.writeString(cfg, Files.readString(cfg).replace("\"n_inner\": 256", "\"n_inner\": 128"));
    CheckpointException e =
        rejected(model.resolve("model.safetensors"), "has shape [256,64], expected [128,64]");
    assertEquals("transformer.h.0.mlp.c_fc.weight", e.tensor());
  }

  @Test
  void rejectsADirectoryThatDoesNotExist() {
    Path missing = tmp.resolve("missing");
    CheckpointException e =
        assertThrows(CheckpointException.class, () -> ModelDirectory.open(missing));
    assertEquals(missing + ": model directory does not exist", e.getMessage());
  }
}
