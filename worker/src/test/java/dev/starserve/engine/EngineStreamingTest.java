package dev.starserve.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.generate.GreedyGenerator;
import dev.starserve.sample.SamplingParams;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * How requests stream next to each other: a decoding request keeps its pace while a long prompt is
 * read in chunks, a broken sink takes down only its own request, and a handle aborts only its own
 * request. Whatever must happen "during" something else is triggered from a sink, which runs on the
 * engine thread between two steps, so the order of events is fixed.
 */
class EngineStreamingTest {
  @TempDir static Path tmp;
  static TinyModel tiny;

  @BeforeAll
  static void open() throws Exception {
    tiny = TinyModel.write(tmp);
  }

  @AfterAll
  static void close() {
    tiny.close();
  }

  static EngineRequest request(String id, int[] prompt, int maxNew) {
    return new EngineRequest(
        id,
        prompt,
        SamplingParams.greedy(),
        new StoppingParams(maxNew, 0, true, null, null, false, 0),
        1,
        0,
        false,
        0,
        0);
  }

  static CollectingSink hooked(Consumer<TokenEvent> hook) {
    return EngineTimeLimitTest.hooked(hook);
  }

  static int[] greedy(int[] prompt, int n) {
    return new GreedyGenerator(tiny.model, tiny.tokenizer, TinyModel.EOS)
        .generate(prompt, n, 0, t -> {}).tokens().stream().mapToInt(t -> t.id()).toArray();
  }

  @Test
  void aDecodingRequestKeepsStreamingWhileALongPromptIsPrefilledInChunks() {
    int[] shortPrompt = TinyModel.randomPrompt(1, 8);
    int[] longPrompt = TinyModel.randomPrompt(2, 1500);
    int[] refShort = greedy(shortPrompt, 40);
    int[] refLong = greedy(longPrompt, 2);
    List<String> order = new ArrayList<>(); // touched on the engine thread only
    CollectingSink reader = hooked(t -> order.add("long"));
    // 16 tokens a step: the 1500-token prompt needs about 100 steps; the decoder needs 40.
    try (Engine e = tiny.engine(512, 8, 16, true)) {
      CollectingSink decoder =
          hooked(
              t -> {
                order.add("short");
                if (t.index() == 1) {
                  e.submit(request("long", longPrompt, 2), reader);
                }
              });
      e.submit(request("short", shortPrompt, 40), decoder);
      decoder.await();
      reader.await();
      // every token of the decoder came before the long prompt's first token
      assertEquals(40, order.indexOf("long"), order.toString());
      assertArrayEquals(refShort, decoder.ids(0));
      assertArrayEquals(refLong, reader.ids(0));
    }
  }

  @Test
  void anAbortFreesTheBlocksOfEverySampleBeforeTheNextStep() {
    List<EngineStats> statsAtTickerTokens = new java.util.concurrent.CopyOnWriteArrayList<>();
    CollectingSink twoSamples = new CollectingSink(2);
    try (Engine e = tiny.engine(512, 8, 256, true)) {
      CollectingSink ticker =
          hooked(
              t -> {
                statsAtTickerTokens.add(e.stats()); // published after the previous step
                if (t.index() == 0) {
                  e.submit(
                      new EngineRequest(
                          "two",
                          TinyModel.randomPrompt(11, 100),
                          SamplingParams.greedy(),
                          new StoppingParams(1000, 0, true, null, null, false, 0),
                          2,
                          0,
                          false,
                          0,
                          0),
                      twoSamples);
                } else if (t.index() == 4) {
                  e.abort("two");
                }
              });
      e.submit(request("ticker", TinyModel.randomPrompt(10, 4), 10), ticker);

      twoSamples.await();
      assertEquals(FinishReason.CANCELLED, twoSamples.finish(0).reason());
      assertEquals(FinishReason.CANCELLED, twoSamples.finish(1).reason());
      ticker.await();
      // Token i of the ticker comes in step i + 1. The request joined in step 2 (sample 1 in
      // step 3, on sample 0's cached prompt) and was aborted before step 6 ran.
      EngineStats afterStep5 = statsAtTickerTokens.get(5);
      assertEquals(3, afterStep5.running());
      assertTrue(afterStep5.kvBlocksUsed() >= 8, "both samples hold blocks: " + afterStep5);
      EngineStats afterStep6 = statsAtTickerTokens.get(6);
      assertEquals(1, afterStep6.running());
      assertEquals(1, afterStep6.kvBlocksUsed()); // the ticker's only
    }
  }

  @Test
  void aSinkThatThrowsCancelsItsOwnRequestAndTheBatchGoesOn() {
    int[] goodPrompt = TinyModel.randomPrompt(3, 30);
    int[] refGood = greedy(goodPrompt, 12);
    CollectingSink bad =
        hooked(
            t -> {
              throw new IllegalStateException("client went away");
            });
    try (Engine e = tiny.engine(512, 8, 256, true)) {
      CollectingSink good =
          hooked(
              t -> {
                if (t.index() == 0) {
                  // joins the next step, next to the good request
                  e.submit(request("bad", TinyModel.randomPrompt(4, 20), 12), bad);
                }
              });
      e.submit(request("good", goodPrompt, 12), good);

      FinishEvent f = bad.await().finish(0);
      assertEquals(FinishReason.CANCELLED, f.reason());
      assertTrue(f.error().contains("sink failed"), f.error());
      assertEquals(1, bad.ids(0).length); // it heard of its first token, then no more
      assertEquals(FinishReason.LENGTH, good.await().finish(0).reason());
      assertNull(good.finish(0).error());
      assertArrayEquals(refGood, good.ids(0));
      assertEquals(0, EngineTest.blocksUsedOnceIdle(e));
    }
  }

  @Test
  void theIdIsFreeForANewRequestAsSoonAsItsFinishEventArrives() {
    try (Engine e = tiny.engine(512, 8, 256, true)) {
      CollectingSink again = new CollectingSink(1);
      CompletableFuture<RuntimeException> resubmit = new CompletableFuture<>();
      CollectingSink first =
          new CollectingSink(2) {
            @Override
            public synchronized void onFinish(FinishEvent ev) {
              super.onFinish(ev);
              if (finishes[0] != null && finishes[1] != null) { // the request's last event
                try {
                  e.submit(request("x", TinyModel.randomPrompt(9, 10), 3), again);
                  resubmit.complete(null);
                } catch (RuntimeException ex) {
                  resubmit.complete(ex);
                }
              }
            }
          };
      e.submit(
          new EngineRequest(
              "x",
              TinyModel.randomPrompt(8, 10),
              SamplingParams.greedy(),
              new StoppingParams(4, 0, true, null, null, false, 0),
              2,
              0,
              false,
              0,
              0),
          first);
      assertNull(resubmit.join());
      assertEquals(3, again.await().ids(0).length);
    }
  }

  @Test
  void aHandleAbortsItsOwnRequestButNotALaterOneThatReusesTheId() {
    try (Engine e = tiny.engine(512, 8, 256, true)) {
      CollectingSink first = new CollectingSink(1);
      RequestHandle old = e.submit(request("x", TinyModel.randomPrompt(5, 10), 2), first);
      assertEquals("x", old.requestId());
      first.await();

      // The old handle aborts between this request's first and second step: too late for it.
      CollectingSink second =
          hooked(
              t -> {
                if (t.index() == 0) {
                  old.abort();
                }
              });
      e.submit(request("x", TinyModel.randomPrompt(6, 10), 20), second);
      assertEquals(FinishReason.LENGTH, second.await().finish(0).reason());
      assertEquals(20, second.ids(0).length);

      // Its own handle does abort it, in the step after the abort was sent.
      CompletableFuture<RequestHandle> own = new CompletableFuture<>();
      CollectingSink third =
          hooked(
              t -> {
                if (t.index() == 0) {
                  // NOTE: join() blocks the engine thread only until submit() below returns
                  own.join().abort();
                }
              });
      own.complete(e.submit(request("x", TinyModel.randomPrompt(7, 10), 1000), third));
      assertEquals(FinishReason.CANCELLED, third.await().finish(0).reason());
      assertEquals(1, third.ids(0).length);
      own.join().abort(); // after the end: harmless
      assertEquals(0, EngineTest.blocksUsedOnceIdle(e));
    }
  }
}
