package dev.starserve.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.model.Float64GptBigCode;
import dev.starserve.sample.SamplingParams;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Prompt logprobs against the float64 oracle of the whole forward pass: read in one step, in
 * chunks, and through preemptions that make the prompt be computed again (whose rows must not be
 * recorded twice).
 */
class PromptLogprobsTest {
  @TempDir static Path tmp;
  static TinyModel tiny;
  static int[] prompt;
  static double[][] oracle; // [position][token] log-softmax

  @BeforeAll
  static void open() throws Exception {
    tiny = TinyModel.write(tmp);
    prompt = TinyModel.randomPrompt(42, 150);
    oracle = new Float64GptBigCode(tiny.dir.config(), tiny.dir.weights()).logProbs(prompt);
  }

  @AfterAll
  static void close() {
    tiny.close();
  }

  static EngineRequest withPromptLogprobs(String id, int[] ids, int maxNew) {
    return new EngineRequest(
        id,
        ids,
        SamplingParams.greedy(),
        new StoppingParams(maxNew, 0, true, null, null, false, 0),
        1,
        0,
        true,
        0,
        0);
  }

  static void assertMatchesOracle(FinishEvent f) {
    List<FinishEvent.PromptLogprob> got = f.promptLogprobs();
    assertEquals(prompt.length - 1, got.size(), "one per prompt token after the first");
    for (int p = 0; p + 1 < prompt.length; p++) {
      assertEquals(prompt[p + 1], got.get(p).tokenId(), "token at " + (p + 1));
      assertEquals(
          oracle[p][prompt[p + 1]], got.get(p).logprob(), 1e-4, "logprob of token " + (p + 1));
    }
  }

  @Test
  void promptLogprobsMatchTheOracleReadInOneStepOrInChunks() {
    for (int budget : new int[] {2048, 16}) {
      try (Engine e = tiny.engine(512, 8, budget, true)) {
        CollectingSink s = new CollectingSink(1);
        e.submit(withPromptLogprobs("p", prompt, 2), s);
        assertMatchesOracle(s.await().finish(0));
        assertEquals(0, s.finish(0).cachedPromptTokens(), "prompt logprobs bypass the cache");
      }
    }
  }

  @Test
  void promptLogprobsMatchTheOracleWhenThePromptIsPreemptedAndComputedAgain() {
    // 14 blocks of 16; A holds 7 to 9 of them while it decodes, the 150-token prompt needs 10:
    // read 31 tokens a step next to A's decoding, it runs out of blocks half-way and, as the
    // newest, is preempted, again and again, until A is done.
    try (Engine e = tiny.engine(14, 8, 32, false)) {
      CollectingSink p = new CollectingSink(1);
      CollectingSink a =
          EngineTimeLimitTest.hooked(
              t -> {
                if (t.index() == 0) {
                  e.submit(withPromptLogprobs("p", prompt, 2), p);
                }
              });
      e.submit(EngineTimeLimitTest.request("a", TinyModel.randomPrompt(43, 110), 20, 0), a);
      assertMatchesOracle(p.await().finish(0));
      a.await();
      assertTrue(e.stats().preemptionsTotal() > 0, "the test must actually preempt");
    }
  }
}
