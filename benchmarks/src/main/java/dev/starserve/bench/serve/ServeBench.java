package dev.starserve.bench.serve;

import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import java.io.IOException;
import java.io.PrintStream;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * {@code bench serve}: sends {@code requests} streaming generations to a gateway through one public
 * API and measures what a client sees.
 *
 * <ul>
 *   <li>Closed loop (no rate): {@code concurrency} requests in flight, each one that ends replaced
 *       by the next until all were sent.
 *   <li>Open loop ({@code rate} &gt; 0): requests arrive as a Poisson process at that rate; an
 *       arrival that finds {@code concurrency} requests in flight waits for one to end (counted as
 *       a delayed arrival), as vLLM's benchmark does with {@code --max-concurrency}. Latencies
 *       start when a request is sent, not when it arrived.
 * </ul>
 *
 * At the duration limit nothing more is sent and what is in flight is cancelled (counted as such).
 * Every request also has its own timeout. The whole run lives on one Vert.x event loop, which owns
 * all of its state; nothing there blocks. A progress line goes to {@code progress} every second.
 */
public final class ServeBench {
  private static final long PROGRESS_MILLIS = 1000;

  private final ServeBenchConfig config;
  private final Vertx vertx;
  private final PrintStream progress;
  private final CompletableFuture<ServeBenchReport> result;
  private final PromptSource prompts;
  private final PoissonArrivals arrivals;
  private final LatencyRecorder recorder = new LatencyRecorder();
  private final Set<Tracker> inFlight = new LinkedHashSet<>();
  private final ArrayDeque<Integer> waiting = new ArrayDeque<>();
  private final TreeMap<String, Long> errors = new TreeMap<>();
  private final Map<String, String> errorExamples = new HashMap<>();

  private StreamClient client;
  private String model;
  private int sent;
  private int arrived;
  private int delayed;
  private int cancelledAtLimit;
  private long failed;
  private long streamedTokens;
  private long startNanos;
  private long nextArrivalNanos;
  private boolean filling;
  private boolean stopping;
  private boolean stoppedAtLimit;
  private boolean finished;
  private long limitTimer = -1;
  private long progressTimer = -1;
  private long arrivalTimer = -1;

  private ServeBench(
      ServeBenchConfig config,
      Vertx vertx,
      PrintStream progress,
      CompletableFuture<ServeBenchReport> result) {
    this.config = config;
    this.vertx = vertx;
    this.progress = progress;
    this.result = result;
    this.prompts = new PromptSource(config.seed(), config.promptLen());
    this.arrivals = config.openLoop() ? new PoissonArrivals(config.rate(), config.seed()) : null;
    this.model = config.model();
  }

  /**
   * Runs the benchmark and returns its report; blocks the calling thread (which must not be a
   * Vert.x thread) until the run is over.
   *
   * @throws IOException when a run without {@code --model} cannot learn the model id (OpenAI)
   */
  public static ServeBenchReport run(ServeBenchConfig config, PrintStream progress)
      throws IOException, InterruptedException {
    // NOTE: one event loop is plenty for the client side of a benchmark (it parses small JSON
    // chunks); keeping the whole run on it means no locks.
    Vertx vertx = Vertx.vertx(new VertxOptions().setEventLoopPoolSize(1).setWorkerPoolSize(1));
    try {
      CompletableFuture<ServeBenchReport> result = new CompletableFuture<>();
      Context context = vertx.getOrCreateContext();
      context.runOnContext(
          v -> {
            try {
              new ServeBench(config, vertx, progress, result).start();
            } catch (RuntimeException e) {
              result.completeExceptionally(e);
            }
          });
      try {
        return result.get();
      } catch (ExecutionException e) {
        Throwable cause = e.getCause();
        if (cause instanceof IOException io) {
          throw io;
        }
        if (cause instanceof RuntimeException re) {
          throw re;
        }
        throw new IllegalStateException(cause);
      }
    } finally {
      try {
        vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
      } catch (ExecutionException | TimeoutException e) {
        progress.println("bench serve: closing the client took too long: " + e);
      }
    }
  }

  private void start() {
    client = StreamClient.create(vertx, config);
    if (config.api() == Api.TGI && model != null) {
      progress.println("bench serve: --model is not sent to the tgi API (TGI serves one model)");
      model = null;
    }
    if (model == null && client instanceof OpenAiStreamClient openai) {
      openai
          .firstModel()
          .onSuccess(
              id -> {
                model = id;
                begin();
              })
          .onFailure(
              t ->
                  client
                      .close()
                      .onComplete(
                          v ->
                              result.completeExceptionally(
                                  new IOException(
                                      "cannot list the models at "
                                          + config.target().display(config.api())
                                          + "/v1/models (give --model): "
                                          + FailureKinds.describe(t)))));
      return;
    }
    begin();
  }

  private void begin() {
    startNanos = System.nanoTime();
    if (config.durationLimit() != null) {
      limitTimer =
          vertx.setTimer(Math.max(1, config.durationLimit().toMillis()), id -> stopAtLimit());
    }
    progressTimer = vertx.setPeriodic(PROGRESS_MILLIS, id -> printProgress());
    if (arrivals != null) {
      nextArrivalNanos = startNanos;
      arrive();
    } else {
      fill();
    }
  }

  /** Closed loop: tops the requests in flight up to the concurrency. */
  private void fill() {
    if (filling) {
      return; // a request that failed at once, inside send(): the loop below goes on
    }
    filling = true;
    try {
      while (!stopping && inFlight.size() < config.concurrency() && sent < config.requests()) {
        send(sent);
      }
    } finally {
      filling = false;
    }
    maybeFinish();
  }

  /** Open loop: releases every arrival that is due, then waits for the next one. */
  private void arrive() {
    arrivalTimer = -1;
    long now = System.nanoTime();
    while (!stopping && arrived < config.requests() && nextArrivalNanos <= now) {
      int index = arrived++;
      if (inFlight.size() < config.concurrency()) {
        send(index);
      } else {
        waiting.add(index);
        delayed++;
      }
      nextArrivalNanos += arrivals.nextGapNanos();
    }
    if (!stopping && arrived < config.requests()) {
      long millis = Math.max(1, TimeUnit.NANOSECONDS.toMillis(nextArrivalNanos - now + 999_999));
      arrivalTimer = vertx.setTimer(millis, id -> arrive());
    }
    maybeFinish();
  }

  private void send(int index) {
    Tracker t = new Tracker();
    inFlight.add(t);
    sent++;
    t.sentAt = System.nanoTime();
    t.timeoutTimer =
        vertx.setTimer(Math.max(1, config.requestTimeout().toMillis()), id -> t.timeout());
    BenchRequest request = new BenchRequest(index, prompts.prompt(index), config.genLen(), model);
    t.handle = client.send(request, t);
  }

  private void ended(Tracker t) {
    inFlight.remove(t);
    if (stopping) {
      maybeFinish();
    } else if (arrivals != null) {
      if (!waiting.isEmpty()) {
        send(waiting.poll());
      }
      maybeFinish();
    } else {
      fill();
    }
  }

  private void stopAtLimit() {
    limitTimer = -1;
    if (finished) {
      return;
    }
    stopping = true;
    stoppedAtLimit = true;
    waiting.clear();
    for (Tracker t : new ArrayList<>(inFlight)) {
      t.cancelAtLimit();
    }
    maybeFinish();
  }

  private void maybeFinish() {
    if (finished || !inFlight.isEmpty()) {
      return;
    }
    boolean allSent =
        arrivals != null
            ? arrived == config.requests() && waiting.isEmpty()
            : sent == config.requests();
    if (stopping || allSent) {
      finish();
    }
  }

  private void finish() {
    finished = true;
    long end = System.nanoTime();
    for (long timer : new long[] {limitTimer, progressTimer, arrivalTimer}) {
      if (timer >= 0) {
        vertx.cancelTimer(timer);
      }
    }
    printProgress();
    ServeBenchReport report =
        new ServeBenchReport(
            config.api().cliName(),
            config.target().display(config.api()),
            model,
            config.concurrency(),
            config.rate(),
            config.requests(),
            config.promptLen(),
            config.genLen(),
            (end - startNanos) / 1e9,
            stoppedAtLimit,
            recorder.count(),
            errors,
            errorExamples,
            cancelledAtLimit,
            config.requests() - sent,
            delayed,
            recorder.promptTokens(),
            recorder.outputTokens(),
            recorder.shortRequests(),
            recorder.ttftMillis(),
            recorder.tpotMillis(),
            recorder.e2eMillis());
    client.close().onComplete(v -> result.complete(report));
  }

  private void printProgress() {
    double elapsed = (System.nanoTime() - startNanos) / 1e9;
    progress.printf(
        Locale.ROOT,
        "[%6.1f s] %d/%d done, %d failed, %d cancelled, %d in flight, %.1f output tokens/s%n",
        elapsed,
        recorder.count() + failed + cancelledAtLimit,
        config.requests(),
        failed,
        cancelledAtLimit,
        inFlight.size(),
        elapsed > 0 ? streamedTokens / elapsed : 0.0);
  }

  /** One request's timings; its first end wins, anything later is ignored. */
  private final class Tracker implements StreamListener {
    long sentAt;
    long firstTokenAt;
    long timeoutTimer = -1;
    int streamed;
    boolean done;
    StreamClient.Cancellable handle;

    @Override
    public void firstToken() {
      if (!done && firstTokenAt == 0) {
        firstTokenAt = System.nanoTime();
      }
    }

    @Override
    public void tokens(int count) {
      if (!done) {
        streamed += count;
        streamedTokens += count;
      }
    }

    @Override
    public void finished(int promptTokens, int outputTokens) {
      if (done) {
        return;
      }
      end();
      long now = System.nanoTime();
      long first = firstTokenAt == 0 ? now : firstTokenAt;
      recorder.record(first - sentAt, now - sentAt, promptTokens, outputTokens, config.genLen());
      streamedTokens += outputTokens - streamed; // the server's count replaces the estimate
      ended(this);
    }

    @Override
    public void failed(String kind, String detail) {
      if (done) {
        return;
      }
      end();
      count(kind, detail);
      ended(this);
    }

    void timeout() {
      timeoutTimer = -1;
      if (done) {
        return;
      }
      end();
      if (handle != null) {
        handle.cancel();
      }
      count(
          FailureKinds.TIMEOUT,
          "no end within " + config.requestTimeout().toMillis() / 1000.0 + " s");
      ended(this);
    }

    void cancelAtLimit() {
      if (done) {
        return;
      }
      end();
      if (handle != null) {
        handle.cancel();
      }
      cancelledAtLimit++;
      inFlight.remove(this);
    }

    private void count(String kind, String detail) {
      failed++;
      errors.merge(kind, 1L, Long::sum);
      errorExamples.putIfAbsent(kind, detail);
    }

    private void end() {
      done = true;
      if (timeoutTimer >= 0) {
        vertx.cancelTimer(timeoutTimer);
        timeoutTimer = -1;
      }
    }
  }
}
