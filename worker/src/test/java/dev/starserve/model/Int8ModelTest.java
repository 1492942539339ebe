package dev.starserve.model;

import static dev.starserve.model.GptBigCodeModelTest.fullSequenceLogits;
import static dev.starserve.model.GptBigCodeModelTest.logSoftmax;
import static dev.starserve.model.GptBigCodeModelTest.randomIds;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.backend.Backend;
import dev.starserve.backend.Quantization;
import dev.starserve.backend.cpu.CpuBackend;
import dev.starserve.backend.ref.ReferenceBackend;
import dev.starserve.checkpoint.DType;
import dev.starserve.generate.TeacherForcedComparison;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Whole models with int8 linear weights: the CPU backend against the scalar twin (the reference
 * backend on the same integers), and the int8 model against the model as stored. Random-weight
 * {@code tiny} models with std 0.1, as in {@link GptBigCodeModelTest}.
 */
class Int8ModelTest {
  private static final double STD = 0.1;

  @TempDir Path tmp;

  private Path writeModel(DType dtype) throws java.io.IOException {
    Path dir = tmp.resolve("m-" + dtype);
    RandomModelWriter.write(dir, ModelShape.TINY.config(), dtype, 42, STD, 1);
    return dir;
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource({"F32", "BF16", "F16"})
  void int8PromptLogProbsOnTheCpuMatchTheScalarTwin(DType dtype) throws Exception {
    Path dir = writeModel(dtype);
    int[] ids = randomIds(7, 40, ModelShape.TINY.config().vocabSize());
    int vocab = ModelShape.TINY.config().vocabSize();
    try (ModelDirectory md = ModelDirectory.open(dir);
        Backend cpu = new CpuBackend(2);
        Backend ref = new ReferenceBackend()) {
      GptBigCodeModel a = new GptBigCodeModel(md.config(), md.weights(), cpu, Quantization.INT8);
      GptBigCodeModel b = new GptBigCodeModel(md.config(), md.weights(), ref, Quantization.INT8);
      assertEquals(Quantization.INT8, a.quantization());
      double[][] got = logSoftmax(fullSequenceLogits(a, ids), ids.length, vocab);
      double[][] want = logSoftmax(fullSequenceLogits(b, ids), ids.length, vocab);
      double worst = 0;
      for (int t = 0; t < ids.length; t++) {
        for (int v = 0; v < vocab; v++) {
          worst = Math.max(worst, Math.abs(got[t][v] - want[t][v]));
        }
      }
      assertTrue(worst <= 1e-4, "max |logprob diff| cpu vs reference, int8: " + worst);
    }
  }

  /**
   * int8 against the bf16 checkpoint as stored, 16 random prompts of 24 tokens × 32 teacher-forced
   * positions. Measured on this model: greedy agreement 497/512 (every disagreement at a position
   * whose top-two margin is under 0.1 nats; 310/310 agree above it), max |Δ logprob| of the chosen
   * token 0.038 (mean 0.0085), 0.078 over the whole vocabulary. The bounds leave about 2× room.
   * Checked against broken quantizers: storing every scale as 1 (weights read as the bare integers)
   * gave agreement 3/512 and |Δ| in the thousands; truncating w / scale instead of rounding it gave
   * 486/512, max 0.083 and mean 0.023 for the chosen token (the mean bound catches it clearly).
   */
  @Test
  void int8KeepsGreedyTokensAndLogprobsCloseToTheBf16Model() throws Exception {
    Path dir = writeModel(DType.BF16);
    GptBigCodeConfig cfg = ModelShape.TINY.config();
    List<int[]> prompts = new ArrayList<>();
    for (int i = 0; i < 16; i++) {
      prompts.add(randomIds(100 + i, 24, cfg.vocabSize()));
    }
    try (ModelDirectory md = ModelDirectory.open(dir);
        Backend b1 = new CpuBackend(2);
        Backend b2 = new CpuBackend(2)) {
      GptBigCodeModel bf16 = new GptBigCodeModel(md.config(), md.weights(), b1);
      GptBigCodeModel int8 = new GptBigCodeModel(md.config(), md.weights(), b2, Quantization.INT8);
      TeacherForcedComparison.Result r = TeacherForcedComparison.compare(bf16, int8, prompts, 32);
      String all = r.toString();
      assertEquals(512, r.positions());
      assertTrue(r.greedyAgreement() >= 0.93, all);
      assertTrue(r.confidentPositions() >= 100 && r.confidentAgreement() >= 0.99, all);
      assertTrue(r.maxChosenLogprobDiff() <= 0.08, all);
      assertTrue(r.meanChosenLogprobDiff() <= 0.017, all);
      assertTrue(r.maxLogprobDiff() <= 0.16, all);
      // and it is not the same model: int8 moved the logprobs
      assertTrue(r.maxLogprobDiff() > 1e-3, all);
    }
  }

  @Test
  void int8HoldsAboutHalfTheBytesOfBf16() throws Exception {
    Path dir = writeModel(DType.BF16);
    try (ModelDirectory md = ModelDirectory.open(dir);
        Backend b1 = new CpuBackend(1);
        Backend b2 = new CpuBackend(1)) {
      GptBigCodeModel bf16 = new GptBigCodeModel(md.config(), md.weights(), b1);
      GptBigCodeModel int8 = new GptBigCodeModel(md.config(), md.weights(), b2, Quantization.INT8);
      GptBigCodeConfig c = md.config();
      long e = c.nEmbd();
      long linear =
          c.nLayer() * (c.qkvDim() * e + e * e + c.nInner() * e + e * c.nInner())
              + c.vocabSize() * e;
      long small = 2 * e + c.nLayer() * (4 * e + c.qkvDim() + e + c.nInner() + e); // LN, biases
      assertEquals(2 * (linear + small), bf16.decodeWeightBytes());
      // 1 byte per weight + a 4-byte scale per 32 (every width here is a multiple of 32 and of
      // the 16-row panels); the rest stays bf16.
      assertEquals(linear + linear / 8 + 2 * small, int8.decodeWeightBytes());
    }
  }
}
