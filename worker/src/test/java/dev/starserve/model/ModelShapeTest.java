package dev.starserve.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class ModelShapeTest {

  @Test
  void cliNamesRoundTrip() {
    for (ModelShape s : ModelShape.values()) {
      assertEquals(s, ModelShape.fromCliName(s.cliName()));
    }
    assertEquals(ModelShape.STARCODERBASE_1B, ModelShape.fromCliName("starcoderbase-1b"));
  }

  @Test
  void unknownCliNameListsTheAllowedOnes() {
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> ModelShape.fromCliName("starcoder2"));
    assertEquals(
        "unknown model shape 'starcoder2': allowed are [tiny, tiny_starcoder_py,"
            + " starcoderbase-1b, santacoder, starcoder]",
        e.getMessage());
  }

  @Test
  void shapesMatchThePublishedModels() {
    GptBigCodeConfig sc = ModelShape.STARCODER.config();
    assertEquals(
        new GptBigCodeConfig(
            6144, 48, 40, 24576, 8192, 49152, true, 1e-5f, Activation.GELU_TANH, true, 0, 0),
        sc);
    GptBigCodeConfig santa = ModelShape.SANTACODER.config();
    assertEquals(49280, santa.vocabSize());
    assertEquals(2048, santa.nPositions());
    GptBigCodeConfig tiny = ModelShape.TINY.config();
    assertEquals(64, tiny.nEmbd());
    assertEquals(4, tiny.nHead());
    assertEquals(2, tiny.nLayer());
    assertEquals(256, tiny.nInner());
    assertEquals(512, tiny.nPositions());
    for (ModelShape s : ModelShape.values()) {
      assertTrue(s.config().multiQuery());
      assertEquals(0, s.config().eosTokenId());
    }
  }

  @Test
  void parameterCountsMatchTheModelCards() {
    // tiny_starcoder_py: 164M; starcoderbase-1b and santacoder: 1.1B; StarCoder: 15.5B.
    assertEquals(164e6, ModelShape.TINY_STARCODER_PY.config().parameterCount(), 1e6);
    assertEquals(1.14e9, ModelShape.STARCODERBASE_1B.config().parameterCount(), 0.01e9);
    assertEquals(1.12e9, ModelShape.SANTACODER.config().parameterCount(), 0.01e9);
    assertEquals(15.5e9, ModelShape.STARCODER.config().parameterCount(), 0.05e9);
  }
}
