package dev.starserve.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.sample.SamplingParams;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Failover resume: a request that generated k tokens on one engine and then continues on a fresh
 * engine with those k tokens as {@code resumeTokenIds} gives the client exactly the stream it would
 * have had from one uninterrupted run: the same ids, the same text, indices continuing from k.
 */
class EngineResumeTest {
  @TempDir static Path tmp;
  static TinyModel tiny;

  static final int N = 24;

  @BeforeAll
  static void open() throws Exception {
    tiny = TinyModel.write(tmp);
  }

  @AfterAll
  static void close() {
    tiny.close();
  }

  static SamplingParams seeded() {
    // Penalties on, so that resumed tokens must feed them for the continuation to match.
    return new SamplingParams(0.9, 40, 0.95, 1, 0, 1.3, 0.2, 0.4, 1234);
  }

  static EngineRequest request(SamplingParams sp, List<String> stops, int[] resume) {
    return new EngineRequest(
        "r",
        TinyModel.randomPrompt(7, 12),
        sp,
        new StoppingParams(N, 0, true, null, stops, false, 0),
        1,
        0,
        false,
        0,
        0,
        resume);
  }

  static CollectingSink run(EngineRequest r) {
    try (Engine e = tiny.engine(64, 4, 16, true)) {
      CollectingSink sink = new CollectingSink(1);
      e.submit(r, sink);
      return sink.await();
    }
  }

  /** Runs {@code straight} up to token k on one engine, then the rest resumed on a fresh one. */
  static void assertResumeMatches(CollectingSink straight, EngineRequest req, int k) {
    int[] first = Arrays.copyOf(straight.ids(0), k);
    StringBuilder clientText = new StringBuilder();
    for (int i = 0; i < k; i++) {
      clientText.append(straight.tokens.get(0).get(i).text());
    }
    CollectingSink resumed = run(req.withResumeTokenIds(first));
    assertEquals(k, resumed.tokens.get(0).get(0).index(), "the first event's index is k");
    int[] all = new int[k + resumed.ids(0).length];
    System.arraycopy(first, 0, all, 0, k);
    System.arraycopy(resumed.ids(0), 0, all, k, resumed.ids(0).length);
    assertArrayEquals(straight.ids(0), all);
    assertEquals(straight.text(0), clientText + resumed.text(0));
    assertEquals(straight.finish(0).reason(), resumed.finish(0).reason());
    assertEquals(straight.finish(0).generatedTokens(), resumed.finish(0).generatedTokens());
    assertEquals(straight.finish(0).promptTokens(), resumed.finish(0).promptTokens());
  }

  @Test
  void greedyResumedAfterKTokensContinuesExactlyAsTheUninterruptedRun() {
    EngineRequest req = request(SamplingParams.greedy(), null, null);
    CollectingSink straight = run(req);
    assertEquals(N, straight.ids(0).length);
    for (int k : new int[] {1, 9, N - 1}) {
      assertResumeMatches(straight, req, k);
    }
  }

  @Test
  void seededSamplingResumedAfterKTokensDrawsTheSameRandomStream() {
    EngineRequest req = request(seeded(), null, null);
    CollectingSink straight = run(req);
    assertEquals(N, straight.ids(0).length);
    for (int k : new int[] {3, 14}) {
      assertResumeMatches(straight, req, k);
    }
  }

  @Test
  void aStopSequenceSpanningTheResumePointStopsTheResumedRunWhereTheStraightOneStops() {
    for (SamplingParams sp : List.of(SamplingParams.greedy(), seeded())) {
      CollectingSink free = run(request(sp, null, null));
      int[] ids = free.ids(0);
      // Find k whose boundary splits a 4-character stop sequence that first occurs there.
      int found = -1;
      String stop = null;
      for (int k = 4; k < N - 2 && found < 0; k++) {
        String before = tiny.tokenizer.decode(Arrays.copyOf(ids, k), true);
        String after = tiny.tokenizer.decode(Arrays.copyOf(ids, k + 1), true);
        if (before.length() < 2 || after.length() < before.length() + 2) {
          continue;
        }
        if (!after.startsWith(before)) {
          continue;
        }
        String cand =
            before.substring(before.length() - 2)
                + after.substring(before.length(), before.length() + 2);
        if (after.indexOf(cand) == before.length() - 2) {
          found = k;
          stop = cand;
        }
      }
      assertTrue(found > 0, "no token boundary to put a stop sequence across");
      EngineRequest req = request(sp, List.of(stop), null);
      CollectingSink straight = run(req);
      assertEquals(FinishReason.STOP_SEQUENCE, straight.finish(0).reason());
      assertEquals(found + 1, straight.ids(0).length, "the stop completes with token k");
      assertResumeMatches(straight, req, found);
    }
  }

  @Test
  void resumeTokenIdsAreValidated() {
    assertThrows(
        IllegalArgumentException.class,
        () -> request(SamplingParams.greedy(), null, new int[N]),
        "as many resumed tokens as max_new_tokens");
    EngineRequest r = request(SamplingParams.greedy(), null, new int[] {1, 49152 + 5});
    try (Engine e = tiny.engine(64, 4, 16, true)) {
      IllegalArgumentException ex =
          assertThrows(IllegalArgumentException.class, () -> e.submit(r, new CollectingSink(1)));
      assertTrue(ex.getMessage().contains("resume_token_ids"), ex.getMessage());
    }
  }
}
