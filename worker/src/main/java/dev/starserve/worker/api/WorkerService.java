package dev.starserve.worker.api;

import dev.starserve.engine.Engine;
import dev.starserve.engine.EngineRequest;
import dev.starserve.engine.EngineStats;
import dev.starserve.engine.FinishEvent;
import dev.starserve.engine.RequestHandle;
import dev.starserve.engine.TokenEvent;
import dev.starserve.generate.GeneratedToken;
import dev.starserve.model.GptBigCodeConfig;
import dev.starserve.prompt.ChatPromptBuilder;
import dev.starserve.prompt.FimPromptBuilder;
import dev.starserve.prompt.PromptResolver;
import dev.starserve.proto.worker.v1.FinishReason;
import dev.starserve.proto.worker.v1.Finished;
import dev.starserve.proto.worker.v1.GenerateEvent;
import dev.starserve.proto.worker.v1.GenerateRequest;
import dev.starserve.proto.worker.v1.InfoRequest;
import dev.starserve.proto.worker.v1.PromptToken;
import dev.starserve.proto.worker.v1.Started;
import dev.starserve.proto.worker.v1.Token;
import dev.starserve.proto.worker.v1.TokenizeRequest;
import dev.starserve.proto.worker.v1.TokenizeResponse;
import dev.starserve.proto.worker.v1.TopToken;
import dev.starserve.proto.worker.v1.WorkerInfo;
import dev.starserve.proto.worker.v1.WorkerServiceGrpc;
import dev.starserve.proto.worker.v1.WorkerState;
import dev.starserve.text.Tokenizer;
import dev.starserve.worker.metrics.WorkerMetrics;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The internal worker API ({@code starserve.worker.v1.WorkerService}) over one {@link Engine}.
 * Methods run on a Vert.x event loop and never block: Generate submits to the engine (which only
 * enqueues) and streams through a {@link GenerateCall}.
 */
final class WorkerService extends WorkerServiceGrpc.WorkerServiceImplBase
    implements GenerateCall.Listener {
  private static final Logger LOG = LoggerFactory.getLogger(WorkerService.class);

  private final Vertx vertx;
  private final Engine engine;
  private final WorkerOptions options;
  private final WorkerMetrics metrics;
  private final Supplier<String> address;
  private final Tokenizer tokenizer;
  private final GptBigCodeConfig model;
  private final RequestMapper mapper;
  private final boolean supportsFim;
  private final String chatFormat;
  // Requests the engine holds (for the capacity bound), and calls whose stream has not ended yet.
  private final ConcurrentHashMap<GenerateCall, Boolean> live = new ConcurrentHashMap<>();
  private final ConcurrentHashMap<GenerateCall, Boolean> open = new ConcurrentHashMap<>();
  private volatile boolean draining;
  private volatile boolean drainTimedOut;
  private volatile Promise<Void> drained;

  WorkerService(
      Vertx vertx,
      Engine engine,
      WorkerOptions options,
      WorkerMetrics metrics,
      Supplier<String> address) {
    this.vertx = vertx;
    this.engine = engine;
    this.options = options;
    this.metrics = metrics;
    this.address = address;
    this.tokenizer = engine.tokenizer();
    this.model = engine.modelConfig();
    this.mapper =
        new RequestMapper(
            new PromptResolver(tokenizer),
            options.modelId(),
            model.nPositions(),
            new SecureRandom());
    this.supportsFim = FimPromptBuilder.forTokenizer(tokenizer).supported();
    this.chatFormat =
        ChatPromptBuilder.forTokenizer(tokenizer)
            .format()
            .name()
            .toLowerCase(java.util.Locale.ROOT);
  }

  // ---- Generate ----

  @Override
  public void generate(GenerateRequest request, StreamObserver<GenerateEvent> responses) {
    ServerCallStreamObserver<GenerateEvent> out =
        (ServerCallStreamObserver<GenerateEvent>) responses;
    if (draining) {
      reject(out, Status.UNAVAILABLE.withDescription("worker is draining"), "unavailable");
      return;
    }
    int bound = engine.config().scheduler().maxNumSeqs() + options.maxWaiting();
    if (live.size() >= bound) {
      reject(
          out,
          Status.RESOURCE_EXHAUSTED.withDescription(
              "worker is full: "
                  + live.size()
                  + " requests running or waiting (at most "
                  + bound
                  + ")"),
          "resource_exhausted");
      return;
    }
    EngineRequest r;
    try {
      r = mapper.map(request);
    } catch (IllegalArgumentException e) {
      reject(out, Status.INVALID_ARGUMENT.withDescription(e.getMessage()), "invalid_argument");
      return;
    }
    int[] prompt = truncated(r);
    boolean promptTokens = request.getReturnPromptTokens() || request.getPromptLogprobs();
    GenerateCall call =
        new GenerateCall(
            r.id(),
            vertx.getOrCreateContext(),
            out,
            options.maxPendingEvents(),
            logprobs -> started(prompt, r.sampling().seed(), promptTokens, logprobs),
            r.promptLogprobs(),
            this::token,
            f -> finished(f, r),
            this);
    call.attach();
    live.put(call, Boolean.TRUE);
    open.put(call, Boolean.TRUE);
    // NOTE: the bridge runs the call in a cancellable gRPC context carrying its deadline; its
    // cancellation (deadline, client gone) aborts the request even if no cancel handler fires.
    io.grpc.Context.current()
        .addListener(
            c -> {
              call.abort();
              String outcome =
                  c.getDeadline() != null && c.getDeadline().isExpired()
                      ? "deadline_exceeded"
                      : "cancelled";
              call.context().runOnContext(v -> call.cancelled(outcome));
            },
            Runnable::run);
    RequestHandle handle;
    try {
      handle = engine.submit(r, call);
    } catch (IllegalArgumentException e) {
      live.remove(call);
      open.remove(call);
      reject(out, Status.INVALID_ARGUMENT.withDescription(e.getMessage()), "invalid_argument");
      return;
    } catch (IllegalStateException e) {
      live.remove(call);
      open.remove(call);
      reject(out, Status.UNAVAILABLE.withDescription("worker is closing"), "unavailable");
      return;
    }
    call.submitted(handle::abort);
  }

  private void reject(ServerCallStreamObserver<GenerateEvent> out, Status status, String outcome) {
    out.onError(status.asRuntimeException());
    metrics.requestEnded(outcome);
  }

  private static int[] truncated(EngineRequest r) {
    int[] p = r.promptIds();
    int keep = r.truncatePromptTokens();
    return keep > 0 && p.length > keep ? Arrays.copyOfRange(p, p.length - keep, p.length) : p;
  }

  private Started started(
      int[] prompt, long seed, boolean withTokens, List<FinishEvent.PromptLogprob> logprobs) {
    Started.Builder b = Started.newBuilder().setInputTokenCount(prompt.length).setSeed(seed);
    if (withTokens) {
      for (int i = 0; i < prompt.length; i++) {
        PromptToken.Builder t = PromptToken.newBuilder().setId(prompt[i]).setText(text(prompt[i]));
        if (logprobs != null && i > 0 && i - 1 < logprobs.size()) {
          t.setLogprob((float) logprobs.get(i - 1).logprob());
        }
        b.addPromptTokens(t);
      }
    }
    return b.build();
  }

  private Token token(TokenEvent e) {
    Token.Builder t =
        Token.newBuilder()
            .setIndex(e.index())
            .setId(e.tokenId())
            .setText(e.text())
            .setTokenText(text(e.tokenId()))
            .setLogprob((float) e.logprob());
    for (GeneratedToken.TopLogprob top : e.topLogprobs()) {
      t.addTopTokens(
          TopToken.newBuilder()
              .setId(top.id())
              .setText(text(top.id()))
              .setLogprob((float) top.logprob()));
    }
    return t.build();
  }

  /** A token's own text: its bytes decoded alone ("" for ids the tokenizer does not have). */
  private String text(int id) {
    return id >= 0 && id < tokenizer.vocabSize()
        ? new String(tokenizer.tokenBytes(id), StandardCharsets.UTF_8)
        : "";
  }

  private Finished finished(FinishEvent f, EngineRequest r) {
    FinishReason reason =
        switch (f.reason()) {
          case LENGTH ->
              f.generatedTokens() < r.stopping().maxNewTokens()
                      && f.promptTokens() + f.generatedTokens() >= model.nPositions()
                  ? FinishReason.CONTEXT_LENGTH
                  : FinishReason.LENGTH;
          case EOS_TOKEN -> FinishReason.EOS_TOKEN;
          case STOP_SEQUENCE -> FinishReason.STOP_SEQUENCE;
          case TIME_LIMIT -> FinishReason.TIME_LIMIT;
          case CANCELLED -> f.error() != null ? FinishReason.ERROR : FinishReason.CANCELLED;
        };
    Finished.Builder b =
        Finished.newBuilder()
            .setReason(reason)
            .setTrailingText(f.trailingText())
            .setInputTokenCount(f.promptTokens())
            .setGeneratedTokenCount(f.generatedTokens())
            .setCachedPromptTokens(f.cachedPromptTokens());
    if (f.stopSequence() != null) {
      b.setStopSequence(f.stopSequence());
    }
    if (f.error() != null) {
      b.setError(f.error());
    }
    return b.build();
  }

  @Override
  public void engineDone(GenerateCall call) {
    live.remove(call);
    checkDrained();
  }

  @Override
  public void callEnded(GenerateCall call, String outcome) {
    open.remove(call);
    metrics.requestEnded(outcome);
    checkDrained();
  }

  /**
   * A drain is done when every call has sent its end to its client; after the timeout, as soon as
   * the engine has let go of every request (a client that does not read cannot hold it up).
   */
  private void checkDrained() {
    Promise<Void> p = drained;
    if (p != null && (open.isEmpty() || drainTimedOut && live.isEmpty())) {
      p.tryComplete();
    }
  }

  // ---- draining ----

  boolean draining() {
    return draining;
  }

  /** Requests the engine still runs or queues for Generate calls. */
  int liveRequests() {
    return live.size();
  }

  /** Generate calls whose stream has not ended. */
  int openCalls() {
    return open.size();
  }

  /**
   * Stops taking Generate calls (UNAVAILABLE) and completes once every running one has finished or
   * {@code timeoutMillis} passed; then the rest are aborted and their calls fail with UNAVAILABLE
   * (so that a gateway resumes them elsewhere), and it completes when the engine let them go.
   */
  io.vertx.core.Future<Void> drain(long timeoutMillis) {
    Promise<Void> p;
    synchronized (this) {
      if (drained != null) {
        return drained.future();
      }
      draining = true;
      p = Promise.promise();
      drained = p;
    }
    checkDrained();
    if (p.future().isComplete()) {
      return p.future();
    }
    long timer =
        vertx.setTimer(
            Math.max(1, timeoutMillis),
            t -> {
              LOG.warn("drain timeout: aborting {} requests", open.size());
              drainTimedOut = true;
              for (GenerateCall c : open.keySet()) {
                c.abortWith(Status.UNAVAILABLE.withDescription("worker is draining"));
              }
              checkDrained();
            });
    p.future().onComplete(v -> vertx.cancelTimer(timer));
    return p.future();
  }

  // ---- Tokenize ----

  @Override
  public void tokenize(TokenizeRequest request, StreamObserver<TokenizeResponse> responses) {
    int keep = request.getTruncateInputTokens();
    if (keep < 0) {
      responses.onError(
          Status.INVALID_ARGUMENT
              .withDescription(
                  "truncate_input_tokens must be in [0, 2147483647], got "
                      + Integer.toUnsignedString(keep))
              .asRuntimeException());
      return;
    }
    String text = request.getText();
    int[] ids = tokenizer.encode(text);
    int from = keep > 0 && ids.length > keep ? ids.length - keep : 0;
    TokenizeResponse.Builder b = TokenizeResponse.newBuilder();
    int[][] offsets = request.getReturnOffsets() ? TokenOffsets.of(tokenizer, text, ids) : null;
    for (int i = from; i < ids.length; i++) {
      b.addIds(ids[i]);
      if (request.getReturnTokens()) {
        b.addTokens(tokenizer.token(ids[i]));
      }
      if (offsets != null) {
        b.addOffsets(
            TokenizeResponse.Offset.newBuilder().setStart(offsets[i][0]).setEnd(offsets[i][1]));
      }
    }
    responses.onNext(b.build());
    responses.onCompleted();
  }

  // ---- Info ----

  @Override
  public void info(InfoRequest request, StreamObserver<WorkerInfo> responses) {
    responses.onNext(info());
    responses.onCompleted();
  }

  WorkerInfo info() {
    EngineStats s = engine.stats();
    int[] eos = engine.eosTokenIds();
    return WorkerInfo.newBuilder()
        .setWorkerId(options.workerId())
        .setAddress(address.get())
        .setModelId(options.modelId())
        .setMaxContext(model.nPositions())
        .setMaxRunningSequences(engine.config().scheduler().maxNumSeqs())
        .setRunning(s.running())
        .setWaiting(s.waiting())
        .setKvBlocksUsed(s.kvBlocksUsed())
        .setKvBlocksTotal(engine.config().numBlocks())
        .setState(draining ? WorkerState.DRAINING : WorkerState.READY)
        .setUpdatedAtMillis(System.currentTimeMillis())
        .setEosTokenId(eos.length > 0 ? eos[0] : 0)
        .setVocabSize(model.vocabSize())
        .setBlockSize(engine.config().blockSize())
        .setPreemptionsTotal(s.preemptionsTotal())
        .setPrefixCacheHitTokensTotal(s.prefixCacheHitTokensTotal())
        .setSupportsFim(supportsFim)
        .setChatFormat(chatFormat)
        .build();
  }
}
