package dev.starserve.bench;

import dev.starserve.engine.Engine;
import dev.starserve.engine.EngineRequest;
import dev.starserve.engine.FinishEvent;
import dev.starserve.engine.RequestSink;
import dev.starserve.engine.StoppingParams;
import dev.starserve.engine.TokenEvent;
import dev.starserve.sample.SamplingParams;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * The engine alone, in-process, no network: requests of {@code promptLen} random tokens, each
 * generating exactly {@code genLen} tokens (EOS ignored), greedy.
 *
 * <ul>
 *   <li>{@link #run}: {@code c} requests submitted at once. Aggregate output tokens/s over the
 *       whole run (prompts included), the decoding rate once every request is decoding, mean time
 *       to first token and mean time per output token after the first, the peak of KV blocks in
 *       use, and what the engine thread allocated per step in the second half of the decoding.
 *   <li>{@link #prefill}: one request asking for one token: its time to first token is the engine's
 *       prefill of the prompt (in chunks of the step token budget).
 *   <li>{@link #ttftUnderLoad}: the time to first token of a new request while {@code background}
 *       others are decoding (chunked prefill should keep it short and the decoders streaming).
 * </ul>
 *
 * <p>The decoding rate is the number of tokens produced after the last request received its first
 * token, divided by the time from then to the last token: with one request it is {@code 1 / TPOT};
 * with many it is what a step of many decoding tokens delivers, without the prompts' prefill.
 *
 * <p>The bench sets the engine's step listener; it owns the engine while it runs.
 */
public final class EngineBench {
  private EngineBench() {}

  // NOTE: every prompt of the process is drawn from one stream, so no two measurements share a
  // prompt and the prefix cache never serves one (a warm-up must not make a prefill free).
  private static final SplittableRandom PROMPTS = new SplittableRandom(20261128);

  /** One concurrency level's numbers (best run of {@code runs}, by output tokens/s). */
  public record Level(
      int n,
      double outputTokensPerSecond,
      double decodeTokensPerSecond,
      double ttftMillis,
      double tpotMillis,
      int peakKvBlocks,
      double engineBytesPerDecodeStep) {}

  /** Step counters kept by the engine thread (through the step listener) and read after a run. */
  private static final class StepProbe {
    private static final com.sun.management.ThreadMXBean THREADS =
        (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    volatile int peakKvBlocks;
    volatile long steps;

    void onStep(long steps, int tokensScheduled, long stepNanos, int kvBlocksUsed) {
      if (kvBlocksUsed > peakKvBlocks) {
        peakKvBlocks = kvBlocksUsed;
      }
      this.steps = steps;
    }

    /** Bytes the calling thread has allocated so far (the engine thread, from a sink). */
    static long allocatedHere() {
      return THREADS.getCurrentThreadAllocatedBytes();
    }
  }

  /** One run's shared state, touched from the engine thread only until the latch opens. */
  private static final class Run {
    final int requests;
    final StepProbe probe;
    final CountDownLatch done;
    int halfway;
    int finished;
    long allocAtAllDecoding;
    long stepsAtAllDecoding;
    long allocAtEnd;
    long stepsAtEnd;

    Run(int requests, StepProbe probe) {
      this.requests = requests;
      this.probe = probe;
      this.done = new CountDownLatch(requests);
    }

    /** A request has half of its tokens: the last to get there starts the allocation window. */
    void halfway() {
      if (++halfway == requests) {
        allocAtAllDecoding = StepProbe.allocatedHere();
        stepsAtAllDecoding = probe.steps;
      }
    }

    void finished() {
      if (++finished == requests) {
        allocAtEnd = StepProbe.allocatedHere();
        stepsAtEnd = probe.steps;
      }
      done.countDown();
    }

    /**
     * Engine-thread bytes per step in the steady state: from the moment every request has half of
     * its tokens (the JIT has settled; the first steps of a level still run kernels before C2 has
     * compiled them, whose Vector API fallback allocates) to the last finish.
     */
    double bytesPerDecodeStep() {
      long steps = stepsAtEnd - stepsAtAllDecoding;
      return steps > 0 ? (double) (allocAtEnd - allocAtAllDecoding) / steps : Double.NaN;
    }
  }

  private static class Timing implements RequestSink {
    final Run run;
    final long start;
    final long[] stamps; // arrival time of each token
    int count;

    Timing(Run run, long start, int genLen) {
      this.run = run;
      this.start = start;
      this.stamps = new long[genLen];
    }

    @Override
    public void onToken(TokenEvent e) {
      if (count < stamps.length) {
        stamps[count] = System.nanoTime();
      }
      if (count == stamps.length / 2) {
        run.halfway();
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
      run.finished();
    }
  }

  private static EngineRequest request(String id, int[] prompt, int genLen) {
    return new EngineRequest(
        id,
        prompt,
        SamplingParams.greedy(),
        new StoppingParams(genLen, 0, true, null, null, false, 0),
        1,
        0,
        false,
        0,
        0);
  }

  private static synchronized int[] prompt(int vocab, int promptLen) {
    int[] p = new int[promptLen];
    for (int j = 0; j < promptLen; j++) {
      p[j] = 1 + PROMPTS.nextInt(vocab - 1);
    }
    return p;
  }

  /** {@code c} requests at once, {@code runs} times; the best run by output tokens/s. */
  public static Level run(Engine engine, int vocab, int c, int promptLen, int genLen, int runs)
      throws InterruptedException {
    if (c < 1 || promptLen < 1 || genLen < 1 || runs < 1) {
      throw new IllegalArgumentException(
          "concurrency, prompt length, gen length and runs must be >= 1");
    }
    Level best = null;
    for (int r = 0; r < runs; r++) {
      StepProbe probe = new StepProbe();
      engine.setStepListener(probe::onStep);
      Run run = new Run(c, probe);
      List<Timing> timings = new ArrayList<>();
      long t0 = System.nanoTime();
      for (int i = 0; i < c; i++) {
        Timing t = new Timing(run, t0, genLen);
        timings.add(t);
        engine.submit(
            request("bench-" + c + "-" + r + "-" + i, prompt(vocab, promptLen), genLen), t);
      }
      run.done.await();
      long t1 = System.nanoTime();
      engine.setStepListener(null);
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
          new Level(
              c,
              (double) c * genLen / ((t1 - t0) / 1e9),
              decodeRate,
              ttft / c,
              tpot / c,
              probe.peakKvBlocks,
              run.bytesPerDecodeStep());
      if (best == null || l.outputTokensPerSecond() > best.outputTokensPerSecond()) {
        best = l;
      }
    }
    return best;
  }

  /**
   * Prefill speed through the engine: one request of {@code promptLen} tokens asking for one new
   * token, {@code runs} times; the best run's prompt tokens per second of time to first token.
   */
  public static double prefill(Engine engine, int vocab, int promptLen, int runs)
      throws InterruptedException {
    if (promptLen < 1 || runs < 1) {
      throw new IllegalArgumentException("prompt length and runs must be >= 1");
    }
    long best = Long.MAX_VALUE;
    for (int r = 0; r < runs; r++) {
      StepProbe probe = new StepProbe();
      Run run = new Run(1, probe);
      long t0 = System.nanoTime();
      Timing t = new Timing(run, t0, 1);
      engine.submit(request("prefill-" + promptLen + "-" + r, prompt(vocab, promptLen), 1), t);
      run.done.await();
      best = Math.min(best, t.first() - t0);
    }
    return promptLen / (best / 1e9);
  }

  /**
   * The time to first token, in milliseconds, of one new request of {@code promptLen} tokens
   * submitted while {@code background} others (same prompt length) are decoding: the others start
   * first and the new one is submitted once every one of them has its first token. The background
   * requests generate {@code genLen} tokens each; they are aborted once the new one has its token.
   */
  public static double ttftUnderLoad(
      Engine engine, int vocab, int background, int promptLen, int genLen)
      throws InterruptedException {
    if (background < 1 || promptLen < 1 || genLen < 2) {
      throw new IllegalArgumentException(
          "background and prompt length must be >= 1 and gen length >= 2");
    }
    Run others = new Run(background, new StepProbe());
    CountDownLatch decoding = new CountDownLatch(background);
    List<String> ids = new ArrayList<>();
    for (int i = 0; i < background; i++) {
      String id = "load-" + background + "-" + i;
      ids.add(id);
      Timing t =
          new Timing(others, System.nanoTime(), genLen) {
            @Override
            public void onToken(TokenEvent e) {
              if (count == 0) {
                decoding.countDown();
              }
              super.onToken(e);
            }
          };
      engine.submit(request(id, prompt(vocab, promptLen), genLen), t);
    }
    decoding.await();
    Run probeRun = new Run(1, new StepProbe());
    long t0 = System.nanoTime();
    Timing probe = new Timing(probeRun, t0, 1);
    engine.submit(request("load-new-" + background, prompt(vocab, promptLen), 1), probe);
    probeRun.done.await();
    boolean stillDecoding = others.done.getCount() > 0;
    ids.forEach(engine::abort);
    others.done.await(60, TimeUnit.SECONDS);
    if (!stillDecoding) {
      throw new IllegalStateException(
          "the background requests finished before the new one started; raise gen length");
    }
    return (probe.first() - t0) / 1e6;
  }
}
