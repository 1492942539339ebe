package dev.starserve.generate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.backend.BatchLayout;
import dev.starserve.backend.cpu.CpuBackend;
import dev.starserve.checkpoint.DType;
import dev.starserve.engine.FinishReason;
import dev.starserve.model.GptBigCodeModel;
import dev.starserve.model.ModelDirectory;
import dev.starserve.model.ModelShape;
import dev.starserve.model.RandomModelWriter;
import dev.starserve.sample.LogProbs;
import dev.starserve.text.Tokenizer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GreedyGeneratorTest {
  @TempDir static Path tmp;
  static ModelDirectory dir;
  static GptBigCodeModel model;
  static Tokenizer tokenizer;

  @BeforeAll
  static void open() throws Exception {
    Path p = tmp.resolve("tiny");
    RandomModelWriter.write(p, ModelShape.TINY.config(), DType.F32, 9, 0.1, 1);
    dir = ModelDirectory.open(p);
    model = new GptBigCodeModel(dir.config(), dir.weights(), new CpuBackend(2));
    tokenizer = Tokenizer.load(dir.tokenizerJson(), dir.tokenizerConfigJson());
  }

  @AfterAll
  static void close() {
    model.close();
    dir.close();
  }

  static int[] randomIds(int n) {
    SplittableRandom r = new SplittableRandom(n);
    int[] ids = new int[n];
    for (int i = 0; i < n; i++) {
      ids[i] = 1 + r.nextInt(49151); // never 0, the EOS id
    }
    return ids;
  }

  @Test
  void eachTokenIsTheArgmaxOfAFullSequenceForwardOverEverythingBeforeIt() {
    // Prefill in chunks of 64 tokens: the 300-token prompt takes five forward passes.
    GreedyGenerator gen = new GreedyGenerator(model, tokenizer, new int[] {}, 64);
    List<GeneratedToken> streamed = new ArrayList<>();
    int ctx = model.config().nPositions();
    int[] shortPrompt = randomIds(300);
    GenerationResult r = gen.generate(shortPrompt, 6, 2, streamed::add);
    assertEquals(6, r.tokens().size());
    assertEquals(r.tokens(), streamed);
    assertEquals(FinishReason.LENGTH, r.finishReason());
    int[] all = java.util.Arrays.copyOf(shortPrompt, 306);
    for (int i = 0; i < 6; i++) {
      all[300 + i] = r.tokens().get(i).id();
    }
    float[] logits = fullForward(all);
    int vocab = model.config().vocabSize();
    for (int i = 0; i < 6; i++) {
      int row = 299 + i;
      assertEquals(
          LogProbs.argmax(logits, row * vocab, vocab), r.tokens().get(i).id(), "token " + i);
      double lp =
          logits[row * vocab + all[300 + i]] - LogProbs.logSumExp(logits, row * vocab, vocab);
      assertEquals(lp, r.tokens().get(i).logprob(), 1e-4);
    }
    assertTrue(ctx > 306);
  }

  private static float[] fullForward(int[] ids) {
    int blocks = (ids.length + 15) / 16;
    int[] table = new int[blocks];
    java.util.Arrays.setAll(table, i -> i);
    int[] rows = new int[ids.length];
    java.util.Arrays.setAll(rows, i -> i);
    return model.forward(
        BatchLayout.singleSequence(ids, 0, table, 16), rows, model.newKvCache(blocks, 16));
  }

  @Test
  void stopsAtAnEosTokenAndReportsIt() {
    int[] prompt = randomIds(20);
    int first =
        new GreedyGenerator(model, tokenizer, new int[] {})
            .generate(prompt, 1, 0, t -> {})
            .tokens()
            .get(0)
            .id();
    GenerationResult r =
        new GreedyGenerator(model, tokenizer, new int[] {first}).generate(prompt, 10, 0, t -> {});
    assertEquals(1, r.tokens().size());
    assertEquals(FinishReason.EOS_TOKEN, r.finishReason());
  }

  @Test
  void stopsWhenTheContextIsFull() {
    int ctx = model.config().nPositions();
    GenerationResult r =
        new GreedyGenerator(model, tokenizer, new int[] {})
            .generate(randomIds(ctx - 2), 10, 0, t -> {});
    assertEquals(2, r.tokens().size());
    assertEquals(FinishReason.LENGTH, r.finishReason());
  }

  @Test
  void rejectsBadPromptsWithMessagesNamingTheProblem() {
    GreedyGenerator gen = new GreedyGenerator(model, tokenizer, new int[] {0});
    int ctx = model.config().nPositions();
    var tooLong =
        assertThrows(
            IllegalArgumentException.class, () -> gen.generate(randomIds(ctx), 1, 0, t -> {}));
    assertTrue(tooLong.getMessage().contains("n_positions"), tooLong.getMessage());
    var empty =
        assertThrows(IllegalArgumentException.class, () -> gen.generate(new int[0], 1, 0, t -> {}));
    assertTrue(empty.getMessage().contains("empty"), empty.getMessage());
    var badId =
        assertThrows(
            IllegalArgumentException.class, () -> gen.generate(new int[] {49152}, 1, 0, t -> {}));
    assertTrue(badId.getMessage().contains("49152"), badId.getMessage());
    var badK =
        assertThrows(
            IllegalArgumentException.class, () -> gen.generate(new int[] {1}, 1, 21, t -> {}));
    assertTrue(badK.getMessage().contains("logprobs"), badK.getMessage());
  }
}
