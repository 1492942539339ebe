package dev.starserve.engine;

import dev.starserve.backend.KvCache;
import dev.starserve.backend.ParallelTask;
import dev.starserve.engine.kv.KvBlockManager;
import dev.starserve.engine.sched.ScheduledBatch;
import dev.starserve.engine.sched.Scheduler;
import dev.starserve.engine.sched.Sequence;
import dev.starserve.model.GptBigCodeConfig;
import dev.starserve.model.LanguageModel;
import dev.starserve.sample.LogProbs;
import dev.starserve.sample.Sampler;
import dev.starserve.sample.SamplingParams;
import dev.starserve.text.Tokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.StampedLock;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The continuous-batching engine. One platform thread runs {@code schedule → execute → update}
 * forever and alone owns the scheduler, the KV blocks and every request's state; other threads talk
 * to it through {@link #submit} and {@link #abort}, which only enqueue commands, and hear back
 * through each request's {@link RequestSink}.
 *
 * <pre>
 * submit/abort ──► inbox ──► [loop] drain inbox → expire deadlines → schedule()
 *                                   → runner.execute() → update() ─► sinks
 * </pre>
 *
 * <p>A request's time limit counts from its submission and ends it wherever it is: waiting in the
 * queue, half-way through a chunked prefill, preempted, or generating. The loop looks at the
 * soonest deadlines before every step, so an expired request gives back its blocks within one step.
 */
public final class Engine implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(Engine.class);

  private sealed interface Command permits Submit, Abort, Shutdown {}

  private record Submit(EngineRequest request, RequestSink sink, long nanos, RequestHandle handle)
      implements Command {}

  /** Aborts the live request with this id; only if it is {@code only}'s request, when not null. */
  private record Abort(String requestId, RequestHandle only) implements Command {}

  private record Shutdown() implements Command {}

  private final LanguageModel model;
  private final SamplingTask sampling = new SamplingTask();
  private int[] chosen = new int[0]; // [sequence of the step] the token SamplingTask chose
  private double[] chosenLse = new double[0]; // [sequence of the step] log-sum-exp of its row
  private final Tokenizer tokenizer;
  private final int[] eosTokenIds;
  private final EngineConfig config;
  private final KvBlockManager kv;
  private final Scheduler scheduler;
  private final ModelRunner runner;
  private final LongSupplier clock;
  private final LinkedBlockingQueue<Command> inbox = new LinkedBlockingQueue<>();
  private final Set<String> liveIds = ConcurrentHashMap.newKeySet();
  private final Map<String, RequestHandle> admitted = new HashMap<>(); // loop thread only
  private final Deadlines deadlines = new Deadlines(); // loop thread only
  private final Thread thread;
  // The stats the loop publishes after every step, written in place under the lock (so that a
  // steady loop allocates nothing) and read as one consistent snapshot by stats().
  private final StampedLock statsLock = new StampedLock();
  private int statRunning;
  private int statWaiting;
  private long statPreemptions;
  private int statKvUsed;
  private int statKvFree;
  private long statPrefixHits;
  private long statPrefixQueries;
  private int statTokensScheduled;
  private long statTokensScheduledTotal;
  private long statStepNanos;
  private long statSteps;
  private volatile StepListener stepListener;
  private volatile boolean closed;
  private long nextSeqId;
  private long arrivals;
  private long steps;
  private long tokensScheduledTotal;

  public Engine(LanguageModel model, Tokenizer tokenizer, int[] eosTokenIds, EngineConfig config) {
    this(model, tokenizer, eosTokenIds, config, System::nanoTime);
  }

  /**
   * @param clock the time, in {@link System#nanoTime()} units, that time limits are measured on;
   *     tests pass one they move by hand. Called from the submitting threads and the loop.
   */
  Engine(
      LanguageModel model,
      Tokenizer tokenizer,
      int[] eosTokenIds,
      EngineConfig config,
      LongSupplier clock) {
    this.model = model;
    this.clock = clock;
    this.tokenizer = tokenizer;
    this.eosTokenIds = eosTokenIds.clone();
    this.config = config;
    this.kv = new KvBlockManager(config.numBlocks(), config.blockSize(), config.prefixCaching());
    this.scheduler = new dev.starserve.engine.sched.Scheduler(config.scheduler(), kv);
    KvCache cache = model.newKvCache(config.numBlocks(), config.blockSize(), config.kvCacheDtype());
    LOG.info(config.describeKvCache(model.config().kvBytesPerToken(config.kvCacheDtype())));
    this.runner = new ModelRunner(model, cache, kv);
    this.thread = Thread.ofPlatform().name("starserve-engine").unstarted(this::loop);
    thread.start();
  }

  public EngineConfig config() {
    return config;
  }

  /** The shape of the model this engine runs. */
  public GptBigCodeConfig modelConfig() {
    return model.config();
  }

  /** The model's tokenizer (thread-safe). */
  public Tokenizer tokenizer() {
    return tokenizer;
  }

  /** The ids that end a generation unless a request ignores EOS. */
  public int[] eosTokenIds() {
    return eosTokenIds.clone();
  }

  /**
   * Hears every step, on the engine thread; it must return at once and never block. One listener;
   * null removes it.
   */
  public void setStepListener(StepListener listener) {
    this.stepListener = listener;
  }

  /**
   * The stats the loop published after its latest step (or after commands changed the counts), as
   * one consistent snapshot. Any thread.
   */
  public EngineStats stats() {
    while (true) {
      long stamp = statsLock.tryOptimisticRead();
      EngineStats s =
          new EngineStats(
              statRunning,
              statWaiting,
              statPreemptions,
              statKvUsed,
              statKvFree,
              statPrefixHits,
              statPrefixQueries,
              statTokensScheduled,
              statTokensScheduledTotal,
              statStepNanos,
              statSteps);
      if (stamp != 0 && statsLock.validate(stamp)) {
        return s;
      }
      Thread.onSpinWait(); // the loop is writing: a handful of fields
    }
  }

  /**
   * Queues a request. Checks what can be checked without the loop and throws {@link
   * IllegalArgumentException} with a message naming the problem: a duplicate id, a prompt that does
   * not fit the model's context (after truncation when asked) or the KV cache, token ids outside
   * the vocabulary. Events then arrive on {@code sink} from the engine thread; the request's time
   * limit starts now.
   *
   * @return a handle that aborts this request and no other
   */
  public RequestHandle submit(EngineRequest request, RequestSink sink) {
    if (closed) {
      throw new IllegalStateException("the engine is shut down");
    }
    int vocab = model.config().vocabSize();
    int context = model.config().nPositions();
    int[] prompt = truncated(request);
    int[] resumed = request.resumeTokenIds();
    if (resumed.length > 0 && prompt.length + resumed.length >= context) {
      throw new IllegalArgumentException(
          "the prompt ("
              + prompt.length
              + " tokens) and resume_token_ids ("
              + resumed.length
              + ") fill the model's context of "
              + context
              + " (n_positions)");
    }
    for (int id : resumed) {
      if (id < 0 || id >= vocab) {
        throw new IllegalArgumentException(
            "resume_token_ids id " + id + " is outside the vocabulary [0, " + vocab + ")");
      }
    }
    if (prompt.length >= context) {
      throw new IllegalArgumentException(
          "the prompt has "
              + prompt.length
              + " tokens but the model's context is "
              + context
              + " (n_positions); it must be shorter to leave room for a new token"
              + (request.truncatePromptTokens() > 0
                  ? ""
                  : ", or set truncate_prompt_tokens to keep only its end"));
    }
    long capacity = (long) config.numBlocks() * config.blockSize();
    if (prompt.length + resumed.length + 1 > capacity) {
      throw new IllegalArgumentException(
          "the prompt has "
              + (prompt.length + resumed.length)
              + " tokens but the KV cache holds only "
              + capacity
              + " positions");
    }
    for (int id : prompt) {
      if (id < 0 || id >= vocab) {
        throw new IllegalArgumentException(
            "prompt token id " + id + " is outside the vocabulary [0, " + vocab + ")");
      }
    }
    if (!liveIds.add(request.id())) {
      throw new IllegalArgumentException("request id '" + request.id() + "' is already in use");
    }
    RequestHandle handle = new RequestHandle(this, request.id());
    inbox.add(new Submit(request, sink, clock.getAsLong(), handle));
    return handle;
  }

  /**
   * Aborts the live request with this id: every sample finishes with CANCELLED within one step.
   * Idempotent. Prefer {@link RequestHandle#abort()}, which cannot reach a later request that
   * reuses the id.
   */
  public void abort(String requestId) {
    inbox.add(new Abort(requestId, null));
  }

  void abort(RequestHandle handle) {
    inbox.add(new Abort(handle.requestId(), handle));
  }

  private static int[] truncated(EngineRequest r) {
    int[] p = r.promptIds();
    int keep = r.truncatePromptTokens();
    return keep > 0 && p.length > keep ? Arrays.copyOfRange(p, p.length - keep, p.length) : p;
  }

  private void loop() {
    try {
      while (true) {
        Command c = nextCommand();
        while (c != null) {
          if (c instanceof Shutdown) {
            cancelAll();
            return;
          }
          handle(c);
          c = inbox.poll();
        }
        expireDeadlines();
        if (scheduler.hasWork()) {
          step();
        } else {
          publishStats(0, 0); // aborts and finishes changed the counts
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      cancelAll();
    }
  }

  /** The next command: without waiting while there is work, else the first to come. */
  private Command nextCommand() throws InterruptedException {
    if (scheduler.hasWork()) {
      return inbox.poll();
    }
    // NOTE: today every sequence with a deadline is scheduler work, so this waits without end; the
    // timed wait keeps a deadline from being slept through should a request ever wait elsewhere.
    long wait = deadlines.nanosUntilFirst(clock.getAsLong());
    return wait == Long.MAX_VALUE ? inbox.take() : inbox.poll(wait, TimeUnit.NANOSECONDS);
  }

  /** Ends every sequence whose time limit has passed, wherever it is, and frees its blocks. */
  private void expireDeadlines() {
    List<Sequence> expired = deadlines.expired(clock.getAsLong());
    for (int i = 0; i < expired.size(); i++) {
      Sequence s = expired.get(i);
      scheduler.finish(s);
      finish(s, FinishReason.TIME_LIMIT, null);
    }
  }

  private void handle(Command c) {
    switch (c) {
      case Submit s -> admit(s);
      case Abort a -> {
        if (a.only() != null && admitted.get(a.requestId()) != a.only()) {
          return; // that request has ended; the id may belong to a newer one now
        }
        for (Sequence s : scheduler.abort(a.requestId())) {
          finish(s, FinishReason.CANCELLED, null);
        }
      }
      case Shutdown sd -> throw new IllegalStateException("handled by the loop");
    }
  }

  private void admit(Submit cmd) {
    EngineRequest r = cmd.request();
    int[] prompt = truncated(r);
    long arrival = arrivals++;
    admitted.put(r.id(), cmd.handle());
    Sequence first = null;
    for (int i = 0; i < r.n(); i++) {
      SamplingParams sp = i == 0 ? r.sampling() : r.sampling().withSeed(r.sampling().seed() + i);
      Sampler sampler = new Sampler(sp, model.config().vocabSize());
      sampler.observePrompt(prompt);
      Sequence s =
          new Sequence(
              nextSeqId++,
              r.id(),
              i,
              r.priority(),
              arrival,
              prompt,
              config.prefixCaching() && !r.promptLogprobs(),
              r.promptLogprobs(),
              first);
      OutputState o =
          new OutputState(
              r,
              cmd.sink(),
              sampler,
              tokenizer.newDetokenizer(true),
              endIds(r),
              cmd.nanos(),
              tokenizer.vocabSize());
      s.setOutput(o);
      if (o.hasDeadline) {
        deadlines.add(s, o.deadlineNanos);
      }
      if (first == null) {
        first = s;
      }
      if (replayResumed(s, o, r.resumeTokenIds())) {
        continue; // the resumed tokens already ended it (the caller should not have resumed)
      }
      scheduler.add(s);
    }
  }

  /**
   * Failover: makes the resumed tokens part of the sequence as if it had generated them here. They
   * join its context (their K/V is computed with the prompt's), count as generated, feed the
   * penalties, advance a seeded generator by the draws they took, and pass through the detokenizer
   * and stop checker so that exactly the text the first worker held back stays held back; nothing
   * is emitted. Returns true when they already end the request (an end token or a stop sequence
   * among them), which is then finished without events but its finish.
   */
  private boolean replayResumed(Sequence s, OutputState o, int[] resumed) {
    if (resumed.length == 0) {
      return false;
    }
    o.sampler.skipDraws(resumed.length);
    for (int id : resumed) {
      s.append(id);
      o.sampler.observeGenerated(id);
      if (o.isEnd(id)) {
        scheduler.finish(s);
        finish(s, FinishReason.EOS_TOKEN, null);
        return true;
      }
      o.stopChecker.append(o.detokenize(id));
      if (o.stopChecker.stopped()) {
        scheduler.finish(s);
        finish(s, FinishReason.STOP_SEQUENCE, null);
        return true;
      }
    }
    return false;
  }

  private int[] endIds(EngineRequest r) {
    int[] stop = r.stopping().stopTokenIds();
    int[] eos = r.stopping().ignoreEos() ? new int[0] : eosTokenIds;
    int[] all = Arrays.copyOf(eos, eos.length + stop.length);
    System.arraycopy(stop, 0, all, eos.length, stop.length);
    return all;
  }

  private void step() {
    long t0 = System.nanoTime();
    ScheduledBatch batch = scheduler.schedule();
    if (!batch.isEmpty()) {
      try {
        StepLogits out = runner.execute(batch);
        update(batch, out);
      } catch (RuntimeException e) {
        // A bug, not a client error: fail what was in the step and keep serving the rest.
        LOG.error("engine step failed; failing its {} sequences", batch.size(), e);
        for (int i = 0; i < batch.size(); i++) {
          Sequence s = batch.seq(i);
          if (!s.finished()) {
            scheduler.finish(s);
            finish(s, FinishReason.CANCELLED, "engine error: " + e);
          }
        }
      }
    } else if (scheduler.numRunning() == 0) {
      // Nothing fits: the head of the queue needs more blocks than are free and nothing runs
      // that could free them. Fail it rather than spin.
      for (Sequence s : scheduler.all()) {
        scheduler.finish(s);
        finish(s, FinishReason.CANCELLED, "the KV cache cannot hold this request");
        break;
      }
    }
    steps++;
    tokensScheduledTotal += batch.totalTokens();
    long stepNanos = System.nanoTime() - t0;
    publishStats(batch.totalTokens(), stepNanos);
    StepListener listener = stepListener;
    if (listener != null) {
      try {
        listener.onStep(steps, batch.totalTokens(), stepNanos, kv.numUsedBlocks());
      } catch (RuntimeException e) {
        LOG.warn("the step listener failed", e);
      }
    }
  }

  private void publishStats(int tokensScheduled, long stepNanos) {
    long stamp = statsLock.writeLock(); // readers never lock: this never waits
    statRunning = scheduler.numRunning();
    statWaiting = scheduler.numWaiting();
    statPreemptions = scheduler.preemptions();
    statKvUsed = kv.numUsedBlocks();
    statKvFree = kv.numFreeBlocks();
    statPrefixHits = kv.prefixHitTokens();
    statPrefixQueries = kv.prefixQueryTokens();
    statTokensScheduled = tokensScheduled;
    statTokensScheduledTotal = tokensScheduledTotal;
    statStepNanos = stepNanos;
    statSteps = steps;
    statsLock.unlockWrite(stamp);
  }

  private void update(ScheduledBatch batch, StepLogits out) {
    long now = clock.getAsLong();
    int vocab = out.vocab();
    float[] logits = out.logits();
    int numSeqs = batch.size();
    if (chosen.length < numSeqs) {
      chosen = new int[Math.max(numSeqs, 2 * chosen.length)];
      chosenLse = new double[chosen.length];
    }
    sampling.batch = batch;
    sampling.out = out;
    model.parallelFor(numSeqs, sampling);
    sampling.batch = null;
    sampling.out = null;
    for (int i = 0; i < numSeqs; i++) {
      Sequence s = batch.seq(i);
      if (s.finished()) {
        continue; // a sibling's sink failed earlier in this update and took the request down
      }
      OutputState o = (OutputState) s.output();
      scheduler.markComputed(s, batch.start(i) + batch.count(i));
      if (out.promptRow()[i] >= 0 && o.promptLogprobs != null) {
        for (int k = 0; k < out.promptCount()[i]; k++) {
          int p = out.promptPos()[i] + k;
          if (p != o.promptLogprobs.size()) {
            continue; // recomputed after a preemption: already recorded
          }
          int row = out.promptRow()[i] + k;
          int next = s.tokens()[p + 1];
          double lse = LogProbs.logSumExp(logits, row * vocab, vocab);
          o.promptLogprobs.add(
              new FinishEvent.PromptLogprob(next, logits[row * vocab + next] - lse));
        }
      }
      if (out.sampleRow()[i] >= 0) {
        produceToken(s, o, logits, out.sampleRow()[i] * vocab, vocab, chosen[i], chosenLse[i], now);
      }
    }
  }

  /**
   * Chooses the next token of every sampling sequence of the step and its row's log-sum-exp, on the
   * model's compute threads while the engine thread waits: each sequence has its own sampler (its
   * own generator, one draw per token), so which thread runs it changes nothing. The engine thread
   * then turns the choices into events in order ({@link #produceToken}).
   */
  private final class SamplingTask implements ParallelTask {
    ScheduledBatch batch;
    StepLogits out;

    @Override
    public void run(int from, int to, int worker) {
      for (int i = from; i < to; i++) {
        int row = out.sampleRow()[i];
        if (row < 0) {
          continue;
        }
        Sequence s = batch.seq(i);
        OutputState o = (OutputState) s.output();
        if (s.generatedTokens() < o.request.stopping().minNewTokens() && o.endIds.length > 0) {
          o.sampler.suppressNext(o.endIds);
        }
        int off = row * out.vocab();
        chosen[i] = o.sampler.sample(out.logits(), off);
        chosenLse[i] = LogProbs.logSumExp(out.logits(), off, out.vocab());
      }
    }
  }

  private void produceToken(
      Sequence s, OutputState o, float[] logits, int off, int vocab, int id, double lse, long now) {
    StoppingParams st = o.request.stopping();
    double logprob = logits[off + id] - lse;
    s.append(id);
    o.sampler.observeGenerated(id);

    FinishReason reason = null;
    String text;
    if (o.isEnd(id)) {
      reason = FinishReason.EOS_TOKEN;
      text = "";
    } else {
      text = o.stopChecker.append(o.detokenize(id));
      if (o.stopChecker.stopped()) {
        reason = FinishReason.STOP_SEQUENCE;
      }
    }
    if (reason == null) {
      if (s.generatedTokens() >= st.maxNewTokens()
          || s.numTokens() >= model.config().nPositions()) {
        reason = FinishReason.LENGTH;
      } else if (o.pastDeadline(now)) {
        reason = FinishReason.TIME_LIMIT;
      }
    }
    if (reason != null && reason != FinishReason.STOP_SEQUENCE) {
      text += o.drain();
      if (o.stopChecker.stopped()) {
        reason = FinishReason.STOP_SEQUENCE;
      }
    }
    try {
      if (o.promptLogprobs != null && !o.promptLogprobsSent) {
        o.promptLogprobsSent = true;
        o.sink.onPromptLogprobs(s.requestId(), List.copyOf(o.promptLogprobs));
      }
      o.sink.onToken(
          new TokenEvent(
              s.requestId(),
              s.sampleIndex(),
              s.generatedTokens() - 1,
              id,
              text,
              logprob,
              o.top(logits, off, vocab, lse)));
    } catch (RuntimeException e) {
      // The client's side is broken, not the engine: end this request alone, like a client gone.
      LOG.warn("the sink of request {} failed on a token; cancelling it", s.requestId(), e);
      for (Sequence x : scheduler.abort(s.requestId())) {
        finish(x, FinishReason.CANCELLED, "the request's event sink failed: " + e);
      }
      return;
    }
    if (reason != null) {
      scheduler.finish(s);
      finish(s, reason, null);
    }
  }

  /**
   * Tells the sink that a sample ended; the caller has already removed it from the scheduler, which
   * freed its blocks. A sample ending between tokens releases its held-back text here.
   */
  private void finish(Sequence s, FinishReason reason, String error) {
    OutputState o = (OutputState) s.output();
    if (o.hasDeadline) {
      deadlines.remove(s, o.deadlineNanos);
    }
    String trailing = "";
    if (reason != FinishReason.STOP_SEQUENCE) {
      trailing = o.drain();
      if (o.stopChecker.stopped() && reason != FinishReason.CANCELLED) {
        reason = FinishReason.STOP_SEQUENCE; // the held-back text completed a stop sequence
      }
    }
    // NOTE: the id is free again before the sink hears of the end, so that a client may reuse it
    // as soon as it has its finish event; only once, since a new request may hold it by the time
    // the other samples of an aborted one report.
    if (allSamplesDone(s.requestId()) && admitted.remove(s.requestId()) != null) {
      liveIds.remove(s.requestId());
    }
    try {
      o.sink.onFinish(
          new FinishEvent(
              s.requestId(),
              s.sampleIndex(),
              reason,
              trailing,
              s.promptLength(),
              s.generatedTokens(),
              s.cachedPromptTokens(),
              reason == FinishReason.STOP_SEQUENCE ? o.stopChecker.matchedStopSequence() : null,
              o.promptLogprobs == null ? null : List.copyOf(o.promptLogprobs),
              error));
    } catch (RuntimeException e) {
      LOG.warn("a request sink failed on finish of {}", s.requestId(), e);
    }
  }

  private boolean allSamplesDone(String requestId) {
    for (Sequence s : scheduler.all()) {
      if (s.requestId().equals(requestId)) {
        return false;
      }
    }
    return true;
  }

  private void cancelAll() {
    List<Sequence> all = new ArrayList<>(scheduler.all());
    for (Sequence s : all) {
      scheduler.finish(s);
      finish(s, FinishReason.CANCELLED, "the engine is shutting down");
    }
    Command c;
    while ((c = inbox.poll()) != null) {
      if (c instanceof Submit sub) {
        liveIds.remove(sub.request().id());
        for (int i = 0; i < sub.request().n(); i++) {
          sub.sink()
              .onFinish(
                  new FinishEvent(
                      sub.request().id(),
                      i,
                      FinishReason.CANCELLED,
                      "",
                      sub.request().promptIds().length,
                      0,
                      0,
                      null,
                      null,
                      "the engine is shutting down"));
        }
      }
    }
  }

  /** Stops the loop; every queued or running request finishes with CANCELLED. */
  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    inbox.add(new Shutdown());
    try {
      thread.join();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
