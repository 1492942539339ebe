package dev.starserve.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.starserve.checkpoint.CheckpointException;
import dev.starserve.checkpoint.DType;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GptBigCodeConfigTest {

  @TempDir Path dir;

  /** bigcode/starcoder's config.json as published on the hub (trimmed of runner fields). */
  private static final String STARCODER_HUB_CONFIG =
      """
      {
        "_name_or_path": "bigcode/starcoder",
        "activation_function": "gelu_pytorch_tanh",
        "architectures": ["GPTBigCodeForCausalLM"],
        "attention_softmax_in_fp32": true,
        "attn_pdrop": 0.1,
        "bos_token_id": 0,
        "embd_pdrop": 0.1,
        "eos_token_id": 0,
        "inference_runner": 0,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05,
        "max_batch_size": null,
        "max_sequence_length": null,
        "model_type": "gpt_bigcode",
        "multi_query": true,
        "n_embd": 6144,
        "n_head": 48,
        "n_inner": 24576,
        "n_layer": 40,
        "n_positions": 8192,
        "pad_key_length": true,
        "pre_allocate_kv_cache": false,
        "resid_pdrop": 0.1,
        "scale_attention_softmax_in_fp32": true,
        "scale_attn_weights": true,
        "summary_activation": null,
        "summary_first_dropout": 0.1,
        "summary_proj_to_labels": true,
        "summary_type": "cls_index",
        "summary_use_proj": true,
        "torch_dtype": "float32",
        "transformers_version": "4.28.1",
        "use_cache": true,
        "validate_runner_input": true,
        "vocab_size": 49152
      }
      """;

  private static final String MINIMAL =
      """
      {"model_type": "gpt_bigcode", "n_embd": 64, "n_head": 4, "n_layer": 2,
       "n_positions": 512, "vocab_size": 49152 %s}
      """;

  private Path write(String json) throws IOException {
    return Files.writeString(dir.resolve("config.json"), json);
  }

  private GptBigCodeConfig minimalWith(String extra) throws IOException {
    return GptBigCodeConfig.read(write(MINIMAL.formatted(extra)));
  }

  private void assertRejected(String json, String... fragments) throws IOException {
    Path f = write(json);
    CheckpointException e = assertThrows(CheckpointException.class, () -> GptBigCodeConfig.read(f));
    assertEquals(f, e.file());
    assertNull(e.tensor());
    assertTrue(e.getMessage().startsWith(f + ": "), e.getMessage());
    for (String s : fragments) {
      assertTrue(e.getMessage().contains(s), () -> "'" + s + "' not in: " + e.getMessage());
    }
  }

  @Test
  void readsStarCodersHubConfigAndDerivesTheAttentionWidths() throws IOException {
    GptBigCodeConfig c = GptBigCodeConfig.read(write(STARCODER_HUB_CONFIG));
    assertEquals(ModelShape.STARCODER.config(), c);
    assertEquals(128, c.headDim());
    assertEquals(1, c.kvHeads());
    assertEquals(128, c.kvDim());
    assertEquals(6144 + 256, c.qkvDim());
  }

  @Test
  void multiHeadKeysAndValuesWidenCAttn() {
    GptBigCodeConfig c =
        new GptBigCodeConfig(64, 4, 1, 256, 16, 100, false, 1e-5f, Activation.RELU, true, 0, 0);
    assertEquals(4, c.kvHeads());
    assertEquals(64, c.kvDim());
    assertEquals(192, c.qkvDim());
  }

  @Test
  void absentOptionalFieldsTakeHuggingFaceDefaults() throws IOException {
    GptBigCodeConfig c = minimalWith("");
    assertEquals(256, c.nInner());
    assertTrue(c.multiQuery());
    assertEquals(1e-5f, c.layerNormEpsilon());
    assertEquals(Activation.GELU_TANH, c.activation());
    assertTrue(c.scaleAttnWeights());
    // HF's 50256 does not fit a 49152 vocabulary: StarCoder's <|endoftext|> is 0.
    assertEquals(0, c.bosTokenId());
    assertEquals(0, c.eosTokenId());
  }

  @Test
  void absentTokenIdsAreHuggingFaces50256WhenTheVocabularyHoldsIt() throws IOException {
    String json = MINIMAL.formatted("").replace("49152", "50257");
    GptBigCodeConfig c = GptBigCodeConfig.read(write(json));
    assertEquals(50256, c.bosTokenId());
    assertEquals(50256, c.eosTokenId());
  }

  @Test
  void nullInnerWidthMeansFourTimesNEmbd() throws IOException {
    assertEquals(256, minimalWith(", \"n_inner\": null").nInner());
    assertEquals(100, minimalWith(", \"n_inner\": 100").nInner());
  }

  @Test
  void readsOptionalFieldsWhenPresent() throws IOException {
    GptBigCodeConfig c =
        minimalWith(
            ", \"multi_query\": false, \"layer_norm_epsilon\": 1e-6, \"activation_function\":"
                + " \"gelu\", \"scale_attn_weights\": false, \"bos_token_id\": 5,"
                + " \"eos_token_id\": [7, 8]");
    assertFalse(c.multiQuery());
    assertEquals(1e-6f, c.layerNormEpsilon());
    assertEquals(Activation.GELU_ERF, c.activation());
    assertFalse(c.scaleAttnWeights());
    assertEquals(5, c.bosTokenId());
    assertEquals(7, c.eosTokenId());
  }

  @Test
  void acceptsHuggingFaceAliasNames() throws IOException {
    GptBigCodeConfig c =
        GptBigCodeConfig.read(
            write(
                """
                {"model_type": "gpt_bigcode", "hidden_size": 768, "num_attention_heads": 12,
                 "num_hidden_layers": 20, "max_position_embeddings": 8192, "n_inner": 3072,
                 "vocab_size": 49152}
                """));
    assertEquals(ModelShape.TINY_STARCODER_PY.config(), c);
  }

  @Test
  void rejectsAnAliasThatDisagreesWithItsField() throws IOException {
    assertRejected(
        MINIMAL.formatted(", \"hidden_size\": 128"),
        "n_embd (64) and its alias hidden_size (128) disagree");
  }

  @Test
  void rejectsAnUnknownModelType() throws IOException {
    assertRejected(
        STARCODER_HUB_CONFIG.replace("\"gpt_bigcode\"", "\"llama\""),
        "unknown model_type 'llama': StarServe serves gpt_bigcode models");
  }

  @Test
  void rejectsAConfigWithoutModelType() throws IOException {
    assertRejected("{\"n_embd\": 64}", "has no model_type");
  }

  @Test
  void rejectsAMissingRequiredField() throws IOException {
    assertRejected(
        MINIMAL.formatted("").replace("\"n_layer\": 2,", ""),
        "missing required field n_layer (or num_hidden_layers)");
  }

  @Test
  void rejectsFieldsOfTheWrongType() throws IOException {
    assertRejected(
        MINIMAL.formatted("").replace("\"n_embd\": 64", "\"n_embd\": \"64\""),
        "n_embd must be an integer, got \"64\"");
    assertRejected(
        MINIMAL.formatted("").replace("\"n_head\": 4", "\"n_head\": 4.5"),
        "n_head must be an integer, got 4.5");
    assertRejected(
        MINIMAL.formatted(", \"multi_query\": \"yes\""), "multi_query must be true or false");
    assertRejected(
        MINIMAL.formatted(", \"layer_norm_epsilon\": \"tiny\""),
        "layer_norm_epsilon must be a number");
    assertRejected(
        MINIMAL.formatted(", \"eos_token_id\": \"0\""),
        "eos_token_id must be an integer or a list of integers");
  }

  @Test
  void rejectsNEmbdNotDivisibleByNHead() throws IOException {
    assertRejected(
        MINIMAL.formatted("").replace("\"n_head\": 4", "\"n_head\": 5"),
        "n_embd (64) must be divisible by n_head (5)");
  }

  @Test
  void rejectsNonPositiveSizesAndEpsilon() throws IOException {
    assertRejected(
        MINIMAL.formatted("").replace("\"n_layer\": 2", "\"n_layer\": 0"),
        "n_layer must be > 0, got 0");
    assertRejected(
        MINIMAL.formatted(", \"layer_norm_epsilon\": 0"),
        "layer_norm_epsilon must be a positive number");
  }

  @Test
  void rejectsATokenIdOutsideTheVocabulary() throws IOException {
    assertRejected(
        MINIMAL.formatted(", \"eos_token_id\": 49152"),
        "eos_token_id must be in [0, vocab_size=49152), got 49152");
  }

  @Test
  void rejectsAnUnknownActivationListingTheAllowedOnes() throws IOException {
    assertRejected(
        MINIMAL.formatted(", \"activation_function\": \"swish\""),
        "unknown activation_function 'swish'",
        "gelu_pytorch_tanh, gelu_new, gelu_fast, gelu, relu");
  }

  @Test
  void rejectsAMissingFile() {
    Path f = dir.resolve("config.json");
    CheckpointException e = assertThrows(CheckpointException.class, () -> GptBigCodeConfig.read(f));
    assertEquals(f + ": config.json does not exist", e.getMessage());
  }

  @Test
  void rejectsMalformedJson() throws IOException {
    assertRejected("{\"model_type\": ", "malformed JSON");
  }

  @Test
  void hfJsonReadsBackToTheSameConfigForEveryShape() throws IOException {
    for (ModelShape s : ModelShape.values()) {
      GptBigCodeConfig c = s.config();
      assertEquals(c, GptBigCodeConfig.read(write(c.toHfJson(DType.BF16))), s.cliName());
    }
    GptBigCodeConfig odd =
        new GptBigCodeConfig(
            48, 6, 3, 100, 32, 1000, false, 1e-6f, Activation.GELU_ERF, false, 3, 4);
    assertEquals(odd, GptBigCodeConfig.read(write(odd.toHfJson())));
  }

  @Test
  void hfJsonHasTheFieldsHubConfigsHave() throws IOException {
    JsonNode j = new ObjectMapper().readTree(ModelShape.STARCODER.config().toHfJson(DType.BF16));
    assertEquals("GPTBigCodeForCausalLM", j.get("architectures").get(0).asText());
    assertEquals("gpt_bigcode", j.get("model_type").asText());
    assertEquals("bfloat16", j.get("torch_dtype").asText());
    assertEquals("gelu_pytorch_tanh", j.get("activation_function").asText());
    assertEquals(1e-5, j.get("layer_norm_epsilon").doubleValue());
    assertEquals(0.02, j.get("initializer_range").doubleValue());
    assertTrue(j.get("attention_softmax_in_fp32").booleanValue());
    assertTrue(j.get("scale_attention_softmax_in_fp32").booleanValue());
    assertEquals(8192, j.get("n_positions").intValue());
    assertEquals(24576, j.get("n_inner").intValue());
    assertTrue(ModelShape.TINY.config().toHfJson().contains("\"n_embd\": 64,\n"));
    assertNull(new ObjectMapper().readTree(ModelShape.TINY.config().toHfJson()).get("torch_dtype"));
  }

  @Test
  void activationNamesMapAsHuggingFaceDefinesThem() {
    assertEquals(Activation.GELU_TANH, Activation.fromHf("gelu_pytorch_tanh"));
    assertEquals(Activation.GELU_TANH, Activation.fromHf("gelu_new"));
    assertEquals(Activation.GELU_TANH, Activation.fromHf("gelu_fast"));
    assertEquals(Activation.GELU_ERF, Activation.fromHf("gelu"));
    assertEquals(Activation.RELU, Activation.fromHf("relu"));
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> Activation.fromHf("silu"));
    assertTrue(e.getMessage().contains("'silu'") && e.getMessage().contains("gelu_new"));
    assertThrows(IllegalArgumentException.class, () -> Activation.fromHf(null));
  }
}
