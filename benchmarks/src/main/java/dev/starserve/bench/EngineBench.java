package dev.starserve.bench;

import dev.starserve.engine.Engine;
import dev.starserve.engine.EngineRequest;
import dev.starserve.engine.FinishEvent;
import dev.starserve.engine.RequestSink;
import dev.starserve.engine.StoppingParams;
import dev.starserve.engine.TokenEvent;
import dev.starserve.sample.SamplingParams;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;

/**
 * The engine alone, in-process: {@code c} requests of {@code promptLen} random tokens submitted at
 * once, each generating exactly {@code genLen} tokens (EOS ignored), greedy. Reports aggregate
 * output tokens/s over the whole run (prompts included), the decoding rate once every request is
 * decoding, mean time to first token and mean time per output token after the first.
 *
 * <p>The decoding rate is the number of tokens produced after the last request received its first
 * token, divided by the time from then to the last token: with one request it is {@code 1 / TPOT};
 * with many it is what a step of many decoding tokens delivers, without the prompts' prefill.
 */
public final class EngineBench {
  private EngineBench() {}

  /** One concurrency level's numbers (best run of {@code runs}). */
  public record Level(
      int n,
      double outputTokensPerSecond,
      double decodeTokensPerSecond,
      double ttftMillis,
      double tpotMillis) {}

  private static final class Timing implements RequestSink {
    final long start;
    final long[] stamps; // arrival time of each token
    int count;
    final CountDownLatch done;

    Timing(long start, int genLen, CountDownLatch done) {
      this.start = start;
      this.stamps = new long[genLen];
      this.done = done;
    }

    @Override
    public void onToken(TokenEvent e) {
      if (count < stamps.length) {
        stamps[count] = System.nanoTime();
      }
      count++;
    }

    long first() {
      return stamps[0];
    }

    long last() {
      return stamps[Math.min(count, stamps.length) - 1];
    }

    @Override
    public void onFinish(FinishEvent e) {
      done.countDown();
    }
  }

  public static Level run(Engine engine, int vocab, int c, int promptLen, int genLen, int runs)
      throws InterruptedException {
    Level best = null;
    SplittableRandom rnd = new SplittableRandom(c);
    for (int run = 0; run < runs; run++) {
      CountDownLatch done = new CountDownLatch(c);
      List<Timing> timings = new ArrayList<>();
      long t0 = System.nanoTime();
      for (int i = 0; i < c; i++) {
        int[] prompt = new int[promptLen];
        for (int j = 0; j < promptLen; j++) {
          prompt[j] = 1 + rnd.nextInt(vocab - 1);
        }
        Timing t = new Timing(t0, genLen, done);
        timings.add(t);
        engine.submit(
            new EngineRequest(
                "bench-" + c + "-" + run + "-" + i,
                prompt,
                SamplingParams.greedy(),
                new StoppingParams(genLen, 0, true, null, null, false, 0),
                1,
                0,
                false,
                0,
                0),
            t);
      }
      done.await();
      long t1 = System.nanoTime();
      double ttft = 0;
      double tpot = 0;
      long allDecoding = 0;
      long end = 0;
      for (Timing t : timings) {
        ttft += (t.first() - t.start) / 1e6;
        tpot += genLen > 1 ? (t.last() - t.first()) / 1e6 / (genLen - 1) : 0;
        allDecoding = Math.max(allDecoding, t.first());
        end = Math.max(end, t.last());
      }
      int decoded = 0;
      for (Timing t : timings) {
        for (int i = 0; i < Math.min(t.count, genLen); i++) {
          decoded += t.stamps[i] > allDecoding ? 1 : 0;
        }
      }
      double decodeRate = end > allDecoding ? decoded / ((end - allDecoding) / 1e9) : 0;
      Level l =
          new Level(c, (double) c * genLen / ((t1 - t0) / 1e9), decodeRate, ttft / c, tpot / c);
      if (best == null || l.outputTokensPerSecond() > best.outputTokensPerSecond()) {
        best = l;
      }
    }
    return best;
  }
}
