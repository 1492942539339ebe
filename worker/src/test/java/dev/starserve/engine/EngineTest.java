package dev.starserve.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.generate.GenerationResult;
import dev.starserve.generate.GreedyGenerator;
import dev.starserve.model.GptBigCodeModel;
import dev.starserve.sample.SamplingParams;
import dev.starserve.text.Tokenizer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The continuous-batching engine against the sequential reference ({@link GreedyGenerator}, one
 * request at a time, its own cache): batched, chunked, preempted and prefix-cached runs must give
 * the same tokens.
 */
class EngineTest {
  @TempDir static Path tmp;
  static TinyModel tiny;
  static GptBigCodeModel model;
  static Tokenizer tokenizer;
  static final int[] EOS = TinyModel.EOS;

  @BeforeAll
  static void open() throws Exception {
    tiny = TinyModel.write(tmp);
    model = tiny.model;
    tokenizer = tiny.tokenizer;
  }

  @AfterAll
  static void close() {
    tiny.close();
  }

  static Engine engine(int numBlocks, int maxSeqs, int maxTokens, boolean prefixCaching) {
    return tiny.engine(numBlocks, maxSeqs, maxTokens, prefixCaching);
  }

  static int[] randomPrompt(long seed, int n) {
    return TinyModel.randomPrompt(seed, n);
  }

  /** 32 prompts of 1 to 1000 tokens. */
  static List<int[]> mixedPrompts() {
    List<int[]> prompts = new ArrayList<>();
    SplittableRandom r = new SplittableRandom(5);
    for (int i = 0; i < 32; i++) {
      int len = i == 0 ? 1 : i == 1 ? 1000 : 1 + r.nextInt(1000);
      prompts.add(randomPrompt(100 + i, len));
    }
    return prompts;
  }

  static final int GEN = 6;

  static List<GenerationResult> sequentialReference(List<int[]> prompts) {
    GreedyGenerator g = new GreedyGenerator(model, tokenizer, EOS);
    List<GenerationResult> out = new ArrayList<>();
    for (int[] p : prompts) {
      out.add(g.generate(p, GEN, 0, t -> {}));
    }
    return out;
  }

  static List<CollectingSink> runTogether(Engine e, List<int[]> prompts) {
    List<CollectingSink> sinks = new ArrayList<>();
    for (int i = 0; i < prompts.size(); i++) {
      CollectingSink s = new CollectingSink(1);
      e.submit(EngineRequest.greedy("r" + i, prompts.get(i), GEN), s);
      sinks.add(s);
    }
    sinks.forEach(CollectingSink::await);
    return sinks;
  }

  static void assertSameAsReference(List<GenerationResult> ref, List<CollectingSink> got) {
    for (int i = 0; i < ref.size(); i++) {
      int[] refIds = ref.get(i).tokens().stream().mapToInt(t -> t.id()).toArray();
      assertArrayEquals(refIds, got.get(i).ids(0), "request " + i);
      double[] refLp = ref.get(i).tokens().stream().mapToDouble(t -> t.logprob()).toArray();
      assertArrayEquals(refLp, got.get(i).logprobs(0), 1e-4, "request " + i);
      assertEquals(ref.get(i).text(), got.get(i).text(0), "request " + i);
    }
  }

  @Test
  void thirtyTwoMixedRequestsTogetherGiveTheSameTokensAsEachAlone() {
    List<int[]> prompts = mixedPrompts();
    List<GenerationResult> ref = sequentialReference(prompts);
    try (Engine e = engine(2048, 64, 2048, true)) {
      assertSameAsReference(ref, runTogether(e, prompts));
      assertEquals(0, blocksUsedOnceIdle(e));
    }
  }

  @Test
  void chunkedPrefillUnderASmallTokenBudgetGivesTheSameTokens() {
    List<int[]> prompts = mixedPrompts();
    List<GenerationResult> ref = sequentialReference(prompts);
    try (Engine e = engine(2048, 64, 48, true)) {
      assertSameAsReference(ref, runTogether(e, prompts));
    }
  }

  @Test
  void preemptionUnderASmallKvCacheGivesTheSameTokens() {
    List<int[]> prompts = mixedPrompts();
    List<GenerationResult> ref = sequentialReference(prompts);
    // 80 blocks × 16 = 1280 positions: the 1000-token prompt fits, the whole batch does not.
    try (Engine e = engine(80, 64, 512, false)) {
      assertSameAsReference(ref, runTogether(e, prompts));
      assertTrue(e.stats().preemptionsTotal() > 0, "the test must actually preempt");
      assertEquals(0, blocksUsedOnceIdle(e));
    }
  }

  /**
   * Stats are published when a step ends, after the sinks heard of their finish: wait for the loop
   * to publish an idle state (bounded).
   */
  static int blocksUsedOnceIdle(Engine e) {
    long deadline = System.nanoTime() + 10_000_000_000L;
    while ((e.stats().running() > 0 || e.stats().kvBlocksUsed() > 0)
        && System.nanoTime() < deadline) {
      Thread.onSpinWait();
    }
    return e.stats().kvBlocksUsed();
  }

  static EngineRequest sampled(String id, int[] prompt, long seed) {
    return new EngineRequest(
        id,
        prompt,
        new SamplingParams(0.9, 50, 0.95, 1.0, 0.0, 1.1, 0.2, 0.1, seed),
        StoppingParams.maxTokens(12),
        1,
        2,
        false,
        0,
        0);
  }

  @Test
  void seededSamplingGivesTheSameTokensAloneAndInABusyBatch() {
    int[] prompt = randomPrompt(1, 40);
    int[] alone;
    try (Engine e = engine(512, 64, 256, true)) {
      CollectingSink s = new CollectingSink(1);
      e.submit(sampled("a", prompt, 1234), s);
      alone = s.await().ids(0);
    }
    try (Engine e = engine(512, 64, 256, true)) {
      List<CollectingSink> others = new ArrayList<>();
      for (int i = 0; i < 12; i++) {
        CollectingSink o = new CollectingSink(1);
        e.submit(sampled("o" + i, randomPrompt(50 + i, 30 + 7 * i), i), o);
        others.add(o);
      }
      CollectingSink s = new CollectingSink(1);
      e.submit(sampled("a", prompt, 1234), s);
      assertArrayEquals(alone, s.await().ids(0));
      others.forEach(CollectingSink::await);
      CollectingSink other = new CollectingSink(1);
      e.submit(sampled("b", prompt, 99), other);
      assertNotEquals(Arrays.toString(alone), Arrays.toString(other.await().ids(0)));
    }
  }

  @Test
  void aSharedThousandTokenPrefixIsComputedOnceAndGivesTheSameResult() {
    int[] prefix = randomPrompt(7, 1000);
    int[] second = Arrays.copyOf(prefix, 1020);
    System.arraycopy(randomPrompt(8, 20), 0, second, 1000, 20);
    int[] withoutCache;
    try (Engine e = engine(512, 8, 2048, false)) {
      CollectingSink s = new CollectingSink(1);
      e.submit(EngineRequest.greedy("b", second, GEN), s);
      withoutCache = s.await().ids(0);
      assertEquals(0, s.finish(0).cachedPromptTokens());
      // the whole prompt, then one token for each decode step after the first token
      assertEquals(1020 + withoutCache.length - 1, idleStatsAfter(e, 0).tokensScheduledTotal());
    }
    try (Engine e = engine(512, 8, 2048, true)) {
      CollectingSink a = new CollectingSink(1);
      e.submit(EngineRequest.greedy("a", prefix, GEN), a);
      a.await();
      EngineStats before = idleStatsAfter(e, 0);
      CollectingSink b = new CollectingSink(1);
      e.submit(EngineRequest.greedy("b", second, GEN), b);
      b.await();
      EngineStats after = idleStatsAfter(e, before.steps());
      // 1000 tokens = 62 full blocks of 16 (992 tokens) are reused; only 28 are computed.
      assertEquals(992, b.finish(0).cachedPromptTokens());
      assertEquals(992, after.prefixCacheHitTokensTotal() - before.prefixCacheHitTokensTotal());
      assertEquals(
          28 + b.ids(0).length - 1, after.tokensScheduledTotal() - before.tokensScheduledTotal());
      assertArrayEquals(withoutCache, b.ids(0));
    }
  }

  /**
   * The stats of the first idle moment after step {@code afterStep}: stats are published when a
   * step ends, after the sinks heard of their finish, so wait for them (bounded).
   */
  static EngineStats idleStatsAfter(Engine e, long afterStep) {
    long deadline = System.nanoTime() + 10_000_000_000L;
    EngineStats s = e.stats();
    while ((s.running() > 0 || s.waiting() > 0 || s.steps() <= afterStep)
        && System.nanoTime() < deadline) {
      Thread.onSpinWait();
      s = e.stats();
    }
    return s;
  }

  @Test
  void abortingFreesEveryBlockAndFinishesAsCancelledAndTwiceIsHarmless() throws Exception {
    try (Engine e = engine(512, 8, 256, true)) {
      CollectingSink s = new CollectingSink(2);
      EngineRequest r =
          new EngineRequest(
              "long",
              randomPrompt(3, 300),
              SamplingParams.greedy(),
              new StoppingParams(1000, 0, true, null, null, false, 0),
              2,
              0,
              false,
              0,
              0);
      e.submit(r, s);
      while (s.tokens.get(0).size() < 3) {
        Thread.sleep(5);
      }
      e.abort("long");
      e.abort("long");
      s.await();
      assertEquals(FinishReason.CANCELLED, s.finish(0).reason());
      assertEquals(FinishReason.CANCELLED, s.finish(1).reason());
      e.abort("long"); // after the end: harmless
      e.abort("never-existed");
      long deadline = System.nanoTime() + 5_000_000_000L;
      while (e.stats().kvBlocksUsed() != 0 && System.nanoTime() < deadline) {
        Thread.sleep(5);
      }
      assertEquals(0, e.stats().kvBlocksUsed());
      // the id can be used again once the request is over
      CollectingSink again = new CollectingSink(1);
      e.submit(EngineRequest.greedy("long", randomPrompt(4, 5), 2), again);
      assertEquals(2, again.await().ids(0).length);
    }
  }

  @Test
  void nSamplesShareThePromptBlocksAndDifferBySeed() {
    try (Engine e = engine(512, 8, 2048, true)) {
      CollectingSink s = new CollectingSink(3);
      e.submit(
          new EngineRequest(
              "n3",
              randomPrompt(9, 100),
              new SamplingParams(1.0, 0, 1.0, 1.0, 0.0, 1.0, 0, 0, 42),
              StoppingParams.maxTokens(8),
              3,
              0,
              false,
              0,
              0),
          s);
      s.await();
      // samples 1 and 2 reuse the 6 full blocks (96 tokens) sample 0 computed
      assertEquals(0, s.finish(0).cachedPromptTokens());
      assertEquals(96, s.finish(1).cachedPromptTokens());
      assertEquals(96, s.finish(2).cachedPromptTokens());
      assertNotEquals(Arrays.toString(s.ids(0)), Arrays.toString(s.ids(1)));
    }
  }

  @Test
  void stopsAtAStopSequenceAndCutsIt() {
    int[] prompt = randomPrompt(11, 20);
    GenerationResult ref =
        new GreedyGenerator(model, tokenizer, EOS).generate(prompt, 12, 0, t -> {});
    String text = ref.text();
    // pick a stop string from the middle of the greedy output
    int cut = text.length() / 2;
    String stop = text.substring(cut, Math.min(text.length(), cut + 3));
    try (Engine e = engine(512, 8, 256, true)) {
      CollectingSink s = new CollectingSink(1);
      e.submit(
          new EngineRequest(
              "stop",
              prompt,
              SamplingParams.greedy(),
              new StoppingParams(12, 0, false, null, List.of(stop), false, 0),
              1,
              0,
              false,
              0,
              0),
          s);
      s.await();
      assertEquals(FinishReason.STOP_SEQUENCE, s.finish(0).reason());
      assertEquals(stop, s.finish(0).stopSequence());
      assertEquals(text.substring(0, text.indexOf(stop)), s.text(0));
    }
  }

  @Test
  void rejectsPromptsThatDoNotFitAndTruncatesFromTheLeftWhenAsked() {
    try (Engine e = engine(512, 8, 256, true)) {
      int[] tooLong = randomPrompt(1, 2048);
      IllegalArgumentException x =
          assertThrows(
              IllegalArgumentException.class,
              () -> e.submit(EngineRequest.greedy("x", tooLong, 1), new CollectingSink(1)));
      assertTrue(x.getMessage().contains("n_positions"), x.getMessage());
      CollectingSink s = new CollectingSink(1);
      e.submit(
          new EngineRequest(
              "t",
              tooLong,
              SamplingParams.greedy(),
              StoppingParams.maxTokens(2),
              1,
              0,
              false,
              0,
              100),
          s);
      assertEquals(100, s.await().finish(0).promptTokens());
      CollectingSink ref = new CollectingSink(1);
      e.submit(EngineRequest.greedy("r", Arrays.copyOfRange(tooLong, 1948, 2048), 2), ref);
      assertArrayEquals(ref.await().ids(0), s.ids(0));
      assertThrows(
          IllegalArgumentException.class,
          () -> e.submit(EngineRequest.greedy("bad", new int[] {49152}, 1), new CollectingSink(1)));
    }
    try (Engine small = engine(4, 8, 256, true)) {
      IllegalArgumentException x =
          assertThrows(
              IllegalArgumentException.class,
              () ->
                  small.submit(
                      EngineRequest.greedy("big", randomPrompt(2, 64), 1), new CollectingSink(1)));
      assertEquals(
          "the prompt has 64 tokens but the KV cache holds only 64 positions", x.getMessage());
    }
  }

  static EngineRequest withStopping(String id, int[] prompt, StoppingParams st, int priority) {
    return new EngineRequest(id, prompt, SamplingParams.greedy(), st, 1, 0, false, priority, 0);
  }

  @Test
  void minNewTokensSuppressesStopIdsUntilReached() {
    int[] prompt = randomPrompt(21, 30);
    try (Engine e = engine(512, 8, 256, true)) {
      CollectingSink probe = new CollectingSink(1);
      e.submit(EngineRequest.greedy("probe", prompt, 1), probe);
      int first = probe.await().ids(0)[0];
      CollectingSink stops = new CollectingSink(1);
      e.submit(
          withStopping(
              "stops",
              prompt,
              new StoppingParams(10, 0, false, new int[] {first}, null, false, 0),
              0),
          stops);
      assertEquals(FinishReason.EOS_TOKEN, stops.await().finish(0).reason());
      assertEquals(1, stops.finish(0).generatedTokens());
      CollectingSink min = new CollectingSink(1);
      e.submit(
          withStopping(
              "min",
              prompt,
              new StoppingParams(10, 3, false, new int[] {first}, null, false, 0),
              0),
          min);
      int[] ids = min.await().ids(0);
      assertTrue(ids.length >= 3, "generated " + ids.length);
      for (int i = 0; i < 3; i++) {
        assertNotEquals(first, ids[i], "stop id emitted before min_new_tokens at " + i);
      }
    }
  }

  @Test
  void aTimeLimitEndsAGenerationWithTimeLimit() {
    try (Engine e = engine(512, 8, 256, true)) {
      CollectingSink s = new CollectingSink(1);
      e.submit(
          withStopping(
              "slow",
              randomPrompt(22, 20),
              new StoppingParams(1500, 0, true, null, null, false, 1),
              0),
          s);
      assertEquals(FinishReason.TIME_LIMIT, s.await().finish(0).reason());
      assertTrue(s.finish(0).generatedTokens() < 1500);
    }
  }

  @Test
  void waitingRequestsAreServedByPriorityThenArrival() {
    List<String> order = java.util.Collections.synchronizedList(new ArrayList<>());
    CountDownLatch allSubmitted = new CountDownLatch(1);
    try (Engine e = engine(512, 1, 256, true)) {
      // The blocker holds the engine (max-num-seqs 1) at its first token until the three others
      // are queued: else it could finish before "urgent" arrives, and "late-low" would start.
      CollectingSink blocker =
          EngineTimeLimitTest.hooked(
              t -> {
                if (t.index() == 0) {
                  EngineTimeLimitTest.awaitUninterruptibly(allSubmitted);
                }
              });
      e.submit(
          withStopping(
              "blocker",
              randomPrompt(23, 200),
              new StoppingParams(40, 0, true, null, null, false, 0),
              0),
          blocker);
      List<CollectingSink> sinks = new ArrayList<>();
      String[] ids = {"late-low", "urgent", "later-low"};
      int[] prio = {5, 0, 5};
      for (int i = 0; i < 3; i++) {
        String id = ids[i];
        CollectingSink c =
            new CollectingSink(1) {
              @Override
              public synchronized void onFinish(FinishEvent ev) {
                order.add(id);
                super.onFinish(ev);
              }
            };
        e.submit(
            withStopping(id, randomPrompt(30 + i, 10), StoppingParams.maxTokens(2), prio[i]), c);
        sinks.add(c);
      }
      allSubmitted.countDown();
      blocker.await();
      sinks.forEach(CollectingSink::await);
      assertTrue(blocker.tokens.get(0).size() == 40);
      assertEquals(List.of("urgent", "late-low", "later-low"), order);
    }
  }
}
