package dev.starserve.model.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.backend.Backend;
import dev.starserve.backend.BatchLayout;
import dev.starserve.backend.KvCache;
import dev.starserve.backend.Quantization;
import dev.starserve.backend.cpu.CpuBackend;
import dev.starserve.backend.ref.ReferenceBackend;
import dev.starserve.checkpoint.DType;
import dev.starserve.model.Activation;
import dev.starserve.model.GptBigCodeConfig;
import dev.starserve.model.GptBigCodeModel;
import dev.starserve.model.LanguageModel;
import dev.starserve.model.ModelDirectory;
import dev.starserve.model.ModelShape;
import dev.starserve.model.RandomModelWriter;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.function.IntFunction;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The sharded forward pass against the unsharded one (TP=1, {@link GptBigCodeModel}) on the tiny
 * shape (64 wide, 4 heads, 2 layers, inner 256) with random weights of std 0.1, so that a head,
 * column or bias put in the wrong place moves the logits far beyond the tolerance.
 */
class TensorParallelModelTest {
  private static final double LOGPROB_ATOL = 1e-4;
  private static final int DECODE_STEPS = 16;

  @TempDir Path tmp;

  static GptBigCodeConfig tiny(boolean multiQuery) {
    GptBigCodeConfig t = ModelShape.TINY.config();
    return new GptBigCodeConfig(
        t.nEmbd(),
        t.nHead(),
        t.nLayer(),
        t.nInner(),
        t.nPositions(),
        t.vocabSize(),
        multiQuery,
        t.layerNormEpsilon(),
        Activation.GELU_TANH,
        t.scaleAttnWeights(),
        t.bosTokenId(),
        t.eosTokenId());
  }

  private ModelDirectory write(GptBigCodeConfig cfg) throws Exception {
    Path dir = tmp.resolve("m");
    RandomModelWriter.write(dir, cfg, DType.F32, 42, 0.1, 1);
    return ModelDirectory.open(dir);
  }

  private static IntFunction<Backend> backends(String kind) {
    return r -> kind.equals("cpu") ? new CpuBackend(1) : new ReferenceBackend();
  }

  static int[] randomIds(long seed, int n, int vocab) {
    SplittableRandom r = new SplittableRandom(seed);
    int[] ids = new int[n];
    for (int i = 0; i < n; i++) {
      ids[i] = r.nextInt(vocab);
    }
    return ids;
  }

  static double[] logSoftmax(float[] logits, int row, int vocab) {
    double max = Double.NEGATIVE_INFINITY;
    for (int i = 0; i < vocab; i++) {
      max = Math.max(max, logits[row * vocab + i]);
    }
    double sum = 0;
    for (int i = 0; i < vocab; i++) {
      sum += Math.exp(logits[row * vocab + i] - max);
    }
    double lse = max + Math.log(sum);
    double[] out = new double[vocab];
    for (int i = 0; i < vocab; i++) {
      out[i] = logits[row * vocab + i] - lse;
    }
    return out;
  }

  static int argmax(double[] x) {
    int best = 0;
    for (int i = 1; i < x.length; i++) {
      if (x[i] > x[best]) {
        best = i;
      }
    }
    return best;
  }

  static double maxAbsDiff(double[] a, double[] b) {
    double worst = 0;
    for (int i = 0; i < a.length; i++) {
      worst = Math.max(worst, Math.abs(a[i] - b[i]));
    }
    return worst;
  }

  /** A greedy run: the prompt's logprobs at every position, then one row per decode step. */
  record Run(double[][] promptLogprobs, int[] tokens, double[][] stepLogprobs) {}

  /**
   * Prefills {@code prompt} (every position's logits), then decodes {@link #DECODE_STEPS} greedy
   * tokens one at a time through a paged cache whose blocks are out of order.
   */
  static Run greedy(LanguageModel model, int[] prompt) {
    int vocab = model.config().vocabSize();
    int[] table = {3, 0, 2, 1}; // 64 positions
    KvCache cache = model.newKvCache(table.length, 16);
    int[] rows = new int[prompt.length];
    for (int i = 0; i < rows.length; i++) {
      rows[i] = i;
    }
    float[] all = model.forward(BatchLayout.singleSequence(prompt, 0, table, 16), rows, cache);
    double[][] promptLp = new double[prompt.length][];
    for (int i = 0; i < prompt.length; i++) {
      promptLp[i] = logSoftmax(all, i, vocab);
    }
    int[] tokens = new int[DECODE_STEPS];
    double[][] steps = new double[DECODE_STEPS][];
    double[] last = promptLp[prompt.length - 1];
    float[] logits = new float[vocab];
    for (int s = 0; s < DECODE_STEPS; s++) {
      tokens[s] = argmax(last);
      BatchLayout step =
          BatchLayout.singleSequence(new int[] {tokens[s]}, prompt.length + s, table, 16);
      model.forward(step, new int[] {0}, cache, logits);
      last = logSoftmax(logits, 0, vocab);
      steps[s] = last;
    }
    return new Run(promptLp, tokens, steps);
  }

  @ParameterizedTest(name = "tp={0} multiQuery={1} backend={2}")
  @CsvSource({
    "2, true, reference",
    "4, true, reference",
    "2, false, reference",
    "4, false, reference",
    "2, true, cpu",
    "4, true, cpu",
    "2, false, cpu",
    "4, false, cpu",
  })
  void shardedRanksGiveTheGreedyTokensAndLogprobsOfOneRank(int tp, boolean mq, String be)
      throws Exception {
    GptBigCodeConfig cfg = tiny(mq);
    int[] prompt = randomIds(7, 20, cfg.vocabSize());
    try (ModelDirectory md = write(cfg)) {
      Run one;
      try (GptBigCodeModel m =
          new GptBigCodeModel(md.config(), md.weights(), backends(be).apply(0))) {
        one = greedy(m, prompt);
      }
      Run many;
      try (TensorParallelModel m =
          new TensorParallelModel(md.config(), md.weights(), tp, backends(be), Quantization.NONE)) {
        assertEquals(tp, m.tensorParallelSize());
        many = greedy(m, prompt);
      }
      double worst = 0;
      for (int i = 0; i < prompt.length; i++) {
        worst = Math.max(worst, maxAbsDiff(one.promptLogprobs()[i], many.promptLogprobs()[i]));
      }
      for (int s = 0; s < DECODE_STEPS; s++) {
        assertEquals(one.tokens()[s], many.tokens()[s], "greedy token of step " + s);
        worst = Math.max(worst, maxAbsDiff(one.stepLogprobs()[s], many.stepLogprobs()[s]));
      }
      assertTrue(worst <= LOGPROB_ATOL, "max |logprob diff| " + worst + " > " + LOGPROB_ATOL);
      // The check has teeth: the distributions are far from uniform and the greedy run moves.
      double[] lp = one.stepLogprobs()[DECODE_STEPS - 1];
      assertTrue(lp[argmax(lp)] > -Math.log(cfg.vocabSize()) + 1, "a peaked distribution");
      assertTrue(
          java.util.Arrays.stream(one.tokens()).distinct().count() > 1, "more than one token");
    }
  }

  /**
   * int8 weights split over two ranks: each rank quantizes its own slice, and since the column
   * slices of the c_proj weights start at a multiple of the 32-column quantization block (64 / 2),
   * the ranks hold the very integers and scales of the unsplit int8 model.
   */
  @Test
  void int8WeightsOnTwoRanksGiveTheGreedyTokensAndLogprobsOfOneRank() throws Exception {
    GptBigCodeConfig cfg = tiny(true);
    int[] prompt = randomIds(8, 12, cfg.vocabSize());
    try (ModelDirectory md = write(cfg);
        GptBigCodeModel one =
            new GptBigCodeModel(md.config(), md.weights(), new CpuBackend(1), Quantization.INT8);
        TensorParallelModel two =
            new TensorParallelModel(
                md.config(), md.weights(), 2, backends("cpu"), Quantization.INT8)) {
      assertEquals(Quantization.INT8, two.quantization());
      Run a = greedy(one, prompt);
      Run b = greedy(two, prompt);
      double worst = 0;
      for (int s = 0; s < DECODE_STEPS; s++) {
        assertEquals(a.tokens()[s], b.tokens()[s], "greedy token of step " + s);
        worst = Math.max(worst, maxAbsDiff(a.stepLogprobs()[s], b.stepLogprobs()[s]));
      }
      assertTrue(worst <= LOGPROB_ATOL, "max |logprob diff| " + worst + " > " + LOGPROB_ATOL);
    }
  }

  @Test
  void twoSequencesInOneShardedBatchGiveTheLogitsOfOneRank() throws Exception {
    GptBigCodeConfig cfg = tiny(true);
    int vocab = cfg.vocabSize();
    int[] a = randomIds(1, 9, vocab);
    int[] b = randomIds(2, 5, vocab);
    int n = a.length + b.length;
    int[] ids = new int[n];
    int[] pos = new int[n];
    int[] seq = new int[n];
    int[] slots = new int[n];
    int[][] tables = {{1}, {0}};
    for (int i = 0; i < n; i++) {
      boolean first = i < a.length;
      ids[i] = first ? a[i] : b[i - a.length];
      pos[i] = first ? i : i - a.length;
      seq[i] = first ? 0 : 1;
      slots[i] = tables[seq[i]][0] * 16 + pos[i];
    }
    BatchLayout batch = new BatchLayout(ids, pos, slots, seq, tables, 16);
    int[] rows = {3, 8, 13};
    try (ModelDirectory md = write(cfg);
        GptBigCodeModel one = new GptBigCodeModel(md.config(), md.weights(), new CpuBackend(1));
        TensorParallelModel two =
            new TensorParallelModel(
                md.config(), md.weights(), 2, backends("cpu"), Quantization.NONE)) {
      float[] want = one.forward(batch, rows, one.newKvCache(2, 16));
      float[] got = two.forward(batch, rows, two.newKvCache(2, 16));
      for (int r = 0; r < rows.length; r++) {
        double d = maxAbsDiff(logSoftmax(want, r, vocab), logSoftmax(got, r, vocab));
        assertTrue(d <= LOGPROB_ATOL, "row " + rows[r] + ": max |logprob diff| " + d);
      }
    }
  }

  @Test
  void aTensorParallelSizeThatDoesNotDivideTheHeadsIsRejectedNamingTheFlag() throws Exception {
    GptBigCodeConfig cfg = tiny(true); // 4 heads
    try (ModelDirectory md = write(cfg)) {
      IllegalArgumentException e =
          assertThrows(
              IllegalArgumentException.class,
              () ->
                  new TensorParallelModel(
                      md.config(), md.weights(), 3, backends("cpu"), Quantization.NONE));
      assertTrue(e.getMessage().contains("--tensor-parallel-size 3"), e.getMessage());
      assertTrue(e.getMessage().contains("n_head = 4"), e.getMessage());
      IllegalArgumentException zero =
          assertThrows(
              IllegalArgumentException.class,
              () ->
                  new TensorParallelModel(
                      md.config(), md.weights(), 0, backends("cpu"), Quantization.NONE));
      assertEquals("--tensor-parallel-size must be >= 1, got 0", zero.getMessage());
    }
  }

  @Test
  void multiHeadRejectionSaysTheKvHeadsSplitToo() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class, () -> TensorParallelModel.checkSize(tiny(false), 8));
    assertTrue(e.getMessage().contains("n_head = 4"), e.getMessage());
    assertTrue(e.getMessage().contains("K/V heads"), e.getMessage());
  }

  @Test
  void aTensorParallelSizeThatDoesNotDivideTheMlpIsRejected() {
    GptBigCodeConfig t = ModelShape.TINY.config();
    GptBigCodeConfig cfg =
        new GptBigCodeConfig(
            t.nEmbd(),
            t.nHead(),
            t.nLayer(),
            250, // n_inner: 250 % 4 == 2
            t.nPositions(),
            t.vocabSize(),
            true,
            t.layerNormEpsilon(),
            t.activation(),
            t.scaleAttnWeights(),
            0,
            0);
    TensorParallelModel.checkSize(cfg, 2);
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> TensorParallelModel.checkSize(cfg, 4));
    assertTrue(e.getMessage().contains("--tensor-parallel-size 4"), e.getMessage());
    assertTrue(e.getMessage().contains("n_inner = 250"), e.getMessage());
  }

  @Test
  void aCacheFromAnotherModelIsRejectedBeforeAnyRankRuns() throws Exception {
    GptBigCodeConfig cfg = tiny(true);
    try (ModelDirectory md = write(cfg);
        GptBigCodeModel one = new GptBigCodeModel(md.config(), md.weights(), new CpuBackend(1));
        TensorParallelModel two =
            new TensorParallelModel(
                md.config(), md.weights(), 2, backends("cpu"), Quantization.NONE)) {
      BatchLayout batch = BatchLayout.singleSequence(new int[] {1, 2}, 0, new int[] {0}, 16);
      assertThrows(
          IllegalArgumentException.class,
          () -> two.forward(batch, new int[] {1}, one.newKvCache(1, 16)));
      // The ranks are still in step: a proper call works.
      float[] logits = two.forward(batch, new int[] {1}, two.newKvCache(1, 16));
      assertTrue(Float.isFinite(logits[0]));
    }
  }

  @Test
  void closingStopsTheRankThreads() throws Exception {
    GptBigCodeConfig cfg = tiny(true);
    try (ModelDirectory md = write(cfg)) {
      TensorParallelModel m =
          new TensorParallelModel(
              md.config(), md.weights(), 4, backends("reference"), Quantization.NONE);
      assertTrue(rankThreadsAlive() >= 3, "three rank threads besides the caller");
      m.close();
      assertEquals(0, rankThreadsAlive());
      assertThrows(
          IllegalStateException.class,
          () ->
              m.forward(
                  BatchLayout.singleSequence(new int[] {1}, 0, new int[] {0}, 16),
                  new int[] {0},
                  m.newKvCache(1, 16)));
    }
  }

  private static long rankThreadsAlive() {
    return Thread.getAllStackTraces().keySet().stream()
        .filter(t -> t.getName().startsWith("starserve-tp-rank-") && t.isAlive())
        .count();
  }

  @Test
  void aRankThatFailsReleasesTheOthersAndTheModelRefusesLaterSteps() throws Exception {
    GptBigCodeConfig cfg = tiny(true);
    try (ModelDirectory md = write(cfg);
        TensorParallelModel m =
            new TensorParallelModel(
                md.config(),
                md.weights(),
                2,
                r -> r == 1 ? new FailingBackend() : new ReferenceBackend(),
                Quantization.NONE)) {
      KvCache cache = m.newKvCache(1, 16);
      BatchLayout batch = BatchLayout.singleSequence(new int[] {1, 2}, 0, new int[] {0}, 16);
      IllegalStateException e =
          assertThrows(IllegalStateException.class, () -> m.forward(batch, new int[] {1}, cache));
      assertEquals("rank 1 breaks in attention", e.getCause().getMessage());
      IllegalStateException again =
          assertThrows(IllegalStateException.class, () -> m.forward(batch, new int[] {1}, cache));
      assertTrue(again.getMessage().contains("failed earlier"), again.getMessage());
      assertFalse(again.getCause() == null);
    }
  }
}
