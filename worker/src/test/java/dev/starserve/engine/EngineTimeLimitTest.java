package dev.starserve.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.generate.GenerationResult;
import dev.starserve.generate.GreedyGenerator;
import dev.starserve.sample.SamplingParams;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A request's time limit ends it wherever it is: waiting in the queue, half-way through a chunked
 * prefill, preempted, or between two tokens. The clock is a {@link ManualClock} moved from inside
 * another request's sink, which runs on the engine thread between two steps, so every test knows
 * exactly in which step the deadline passes; nothing depends on how fast the machine is.
 */
class EngineTimeLimitTest {
  @TempDir static Path tmp;
  static TinyModel tiny;

  /** Every limited request gets one second; the clock jumps two when the test says so. */
  static final long LIMIT_MS = 1000;

  static final Duration PAST_THE_LIMIT = Duration.ofSeconds(2);

  @BeforeAll
  static void open() throws Exception {
    tiny = TinyModel.write(tmp);
  }

  @AfterAll
  static void close() {
    tiny.close();
  }

  static EngineRequest request(String id, int[] prompt, int maxNew, long timeLimitMs) {
    return new EngineRequest(
        id,
        prompt,
        SamplingParams.greedy(),
        new StoppingParams(maxNew, 0, true, null, null, false, timeLimitMs),
        1,
        0,
        false,
        0,
        0);
  }

  /** A sink that also runs {@code hook} on the engine thread after recording each token. */
  static CollectingSink hooked(Consumer<TokenEvent> hook) {
    return new CollectingSink(1) {
      @Override
      public synchronized void onToken(TokenEvent e) {
        super.onToken(e);
        hook.accept(e);
      }
    };
  }

  static GenerationResult reference(int[] prompt, int tokens) {
    return new GreedyGenerator(tiny.model, tiny.tokenizer, TinyModel.EOS)
        .generate(prompt, tokens, 0, t -> {});
  }

  static void awaitUninterruptibly(CountDownLatch latch) {
    try {
      if (!latch.await(60, TimeUnit.SECONDS)) {
        throw new AssertionError("the test thread never opened the latch");
      }
    } catch (InterruptedException ex) {
      Thread.currentThread().interrupt();
      throw new AssertionError(ex);
    }
  }

  static int[] ids(GenerationResult r) {
    return r.tokens().stream().mapToInt(t -> t.id()).toArray();
  }

  @Test
  void aRequestWaitingBehindAFullEngineTimesOutInTheQueueWithoutAToken() {
    ManualClock clock = new ManualClock();
    AtomicInteger blockerTokensWhenWaiterEnded = new AtomicInteger(-1);
    CountDownLatch waiterSubmitted = new CountDownLatch(1);
    try (Engine e = tiny.engine(512, 1, 256, true, clock)) {
      CollectingSink blocker =
          hooked(
              t -> {
                if (t.index() == 0) {
                  // NOTE: else the loop may reach token 2 before the waiter is submitted, whose
                  // time limit would then start after the clock moved
                  awaitUninterruptibly(waiterSubmitted);
                }
                if (t.index() == 2) {
                  clock.advance(PAST_THE_LIMIT);
                }
              });
      CollectingSink waiter =
          new CollectingSink(1) {
            @Override
            public synchronized void onFinish(FinishEvent ev) {
              blockerTokensWhenWaiterEnded.set(blocker.ids(0).length);
              super.onFinish(ev);
            }
          };
      // max-num-seqs 1: the waiter cannot start before the blocker's 40 tokens are done.
      e.submit(request("blocker", TinyModel.randomPrompt(1, 20), 40, 0), blocker);
      e.submit(request("waiter", TinyModel.randomPrompt(2, 10), 5, LIMIT_MS), waiter);
      waiterSubmitted.countDown();

      FinishEvent w = waiter.await().finish(0);
      assertEquals(FinishReason.TIME_LIMIT, w.reason());
      assertEquals(0, w.generatedTokens());
      assertEquals(10, w.promptTokens());
      assertEquals("", w.trailingText());
      assertNull(w.error());
      assertEquals(0, waiter.ids(0).length);
      // it ended in the step right after the clock passed its deadline, not when it got a turn
      assertEquals(3, blockerTokensWhenWaiterEnded.get());
      assertEquals(FinishReason.LENGTH, blocker.await().finish(0).reason());
      assertEquals(40, blocker.ids(0).length);
      assertEquals(0, EngineTest.blocksUsedOnceIdle(e));
    }
  }

  @Test
  void aRequestTimesOutHalfWayThroughAChunkedPrefillAndItsBlocksAreFreedThatStep() {
    ManualClock clock = new ManualClock();
    List<EngineStats> statsAtTickerTokens = new CopyOnWriteArrayList<>();
    CollectingSink slow = new CollectingSink(1);
    // 16 tokens a step: the ticker decodes 1, the 1500-token prompt is read 15 at a time.
    try (Engine e = tiny.engine(512, 8, 16, true, clock)) {
      CollectingSink ticker =
          hooked(
              t -> {
                // stats() here is what the loop published after the previous step
                statsAtTickerTokens.add(e.stats());
                if (t.index() == 0) {
                  e.submit(request("slow", TinyModel.randomPrompt(4, 1500), 5, LIMIT_MS), slow);
                } else if (t.index() == 3) {
                  clock.advance(PAST_THE_LIMIT);
                }
              });
      e.submit(request("ticker", TinyModel.randomPrompt(3, 4), 12, 0), ticker);

      FinishEvent f = slow.await().finish(0);
      assertEquals(FinishReason.TIME_LIMIT, f.reason());
      assertEquals(0, f.generatedTokens());
      assertEquals(1500, f.promptTokens());
      assertEquals(0, slow.ids(0).length);
      assertEquals(12, ticker.await().ids(0).length);
      assertEquals(FinishReason.LENGTH, ticker.finish(0).reason());

      // Token i of the ticker comes in step i + 1 and sees the stats of step i. The slow prompt
      // joined in step 2 and read 15 tokens in each of steps 2, 3 and 4; the clock passed its
      // deadline in step 4, so it was gone before step 5 ran.
      EngineStats afterStep3 = statsAtTickerTokens.get(3);
      assertEquals(2, afterStep3.running());
      assertEquals(3, afterStep3.kvBlocksUsed()); // ticker 1 + slow 2 (30 of 1500 tokens read)
      EngineStats afterStep5 = statsAtTickerTokens.get(5);
      assertEquals(1, afterStep5.running());
      assertEquals(0, afterStep5.waiting());
      assertEquals(1, afterStep5.kvBlocksUsed()); // the ticker's only
      assertEquals(0, EngineTest.blocksUsedOnceIdle(e));
    }
  }

  @Test
  void aPreemptedRequestTimesOutWhileWaitingToComeBackAndKeepsWhatItStreamed() {
    ManualClock clock = new ManualClock();
    int[] promptA = TinyModel.randomPrompt(5, 24);
    int[] promptB = TinyModel.randomPrompt(6, 24);
    // references first: the model is not to be used from two threads at once
    int[] refA = ids(reference(promptA, 30));
    GenerationResult refB = reference(promptB, 30);
    CollectingSink[] a = new CollectingSink[1];
    AtomicInteger aTokensWhenBEnded = new AtomicInteger(-1);
    CollectingSink b =
        new CollectingSink(1) {
          @Override
          public synchronized void onFinish(FinishEvent ev) {
            aTokensWhenBEnded.set(a[0].ids(0).length);
            super.onFinish(ev);
          }
        };
    AtomicBoolean advanced = new AtomicBoolean();
    // 4 blocks of 16: A and B take 2 each; at 33 tokens A needs a third and B, the newer, is
    // preempted. It cannot come back (it needs 3 blocks, 1 is free) before its deadline passes.
    try (Engine e = tiny.engine(4, 8, 256, false, clock)) {
      a[0] =
          hooked(
              t -> {
                if (t.index() == 0) {
                  e.submit(request("B", promptB, 100, LIMIT_MS), b);
                } else if (e.stats().preemptionsTotal() > 0 && !advanced.getAndSet(true)) {
                  clock.advance(PAST_THE_LIMIT);
                }
              });
      e.submit(request("A", promptA, 30, 0), a[0]);

      FinishEvent fb = b.await().finish(0);
      assertEquals(FinishReason.TIME_LIMIT, fb.reason());
      assertTrue(advanced.get(), "the test must actually preempt");
      int generated = fb.generatedTokens();
      assertTrue(generated > 0, "B had streamed tokens before it was preempted");
      assertEquals(generated, b.ids(0).length, "the count matches the tokens streamed");
      // what B streamed, plus what was still held back, is the greedy text of those tokens
      assertArrayEquals(Arrays.copyOf(ids(refB), generated), b.ids(0));
      assertEquals(tiny.tokenizer.decode(b.ids(0), true), b.text(0));
      // A was still running when B ended, and B's preemption did not change A's tokens
      assertTrue(aTokensWhenBEnded.get() < 30, "A had " + aTokensWhenBEnded.get() + " tokens");
      assertEquals(FinishReason.LENGTH, a[0].await().finish(0).reason());
      assertArrayEquals(refA, a[0].ids(0));
      assertEquals(0, EngineTest.blocksUsedOnceIdle(e));
    }
  }

  @Test
  void aRequestThatExpiresBetweenTwoTokensReleasesTheTextItHeldBack() {
    ManualClock clock = new ManualClock();
    int[] prompt = TinyModel.randomPrompt(7, 12);
    int k = 4;
    String refText = reference(prompt, k).text();
    assertFalse(refText.isEmpty(), "the test needs some text");
    // A stop string that starts with the last character of the 4-token text and is never
    // completed: the stop checker holds that character back after token 4.
    String held = refText.substring(refText.length() - 1);
    String stop = held + "\u0001never\u0002";
    try (Engine e = tiny.engine(512, 8, 256, true, clock)) {
      // The ticker joins one step after the target and runs after it in every step: its token
      // k - 2 comes right after the target's token k - 1 (the k-th), then the clock jumps.
      CollectingSink ticker =
          hooked(
              t -> {
                if (t.index() == k - 2) {
                  clock.advance(PAST_THE_LIMIT);
                }
              });
      CollectingSink target =
          hooked(
              t -> {
                if (t.index() == 0) {
                  e.submit(request("ticker", TinyModel.randomPrompt(8, 4), 10, 0), ticker);
                }
              });
      e.submit(
          new EngineRequest(
              "target",
              prompt,
              SamplingParams.greedy(),
              new StoppingParams(50, 0, true, null, List.of(stop), false, LIMIT_MS),
              1,
              0,
              false,
              0,
              0),
          target);

      FinishEvent f = target.await().finish(0);
      assertEquals(FinishReason.TIME_LIMIT, f.reason());
      assertEquals(k, f.generatedTokens());
      assertEquals(held, f.trailingText());
      assertEquals(refText, target.text(0));
      ticker.await();
    }
  }
}
