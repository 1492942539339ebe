package dev.starserve.gateway.route;

import dev.starserve.gateway.generate.GenerationException;
import dev.starserve.gateway.generate.GenerationListener;
import dev.starserve.gateway.generate.GenerationStream;
import dev.starserve.proto.worker.v1.Finished;
import dev.starserve.proto.worker.v1.GenerateEvent;
import dev.starserve.proto.worker.v1.GenerateRequest;
import dev.starserve.proto.worker.v1.Token;
import dev.starserve.proto.worker.v1.Tokens;
import dev.starserve.proto.worker.v1.WorkerInfo;
import dev.starserve.proto.worker.v1.WorkerServiceGrpc;
import io.grpc.Deadline;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.grpc.client.GrpcClientRequest;
import io.vertx.grpc.client.GrpcClientResponse;
import io.vertx.grpc.common.GrpcStatus;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One sequence on its way through the cluster: the attempts on successive workers and what the
 * client has been given so far. Confined to the caller's Vert.x context.
 *
 * <pre>
 * attempt 1 on A:  Started ─► client     tokens 0..k ─► client     ✗ (UNAVAILABLE, reset, A left)
 * attempt 2 on B:  request + resume_token_ids = tokens 0..k, seed = Started.seed
 *                  Started (swallowed)   tokens k+1.. ─► client    Finished ─► client
 * </pre>
 *
 * Before the first token a failure is a plain retry; after it a failover. INVALID_ARGUMENT is not
 * retried; RESOURCE_EXHAUSTED tries another worker and ends in OVERLOADED if all are full. A gRPC
 * deadline current when the sequence starts ({@code io.grpc.Context.current()}, as grpc-java
 * propagates them) is sent with every attempt as the time left, and DEADLINE_EXCEEDED ends the
 * sequence without a retry.
 */
final class Relay implements GenerationStream {
  private static final Logger LOG = LoggerFactory.getLogger(Relay.class);

  /** One worker's try at the sequence. */
  private static final class Attempt {
    final WorkerInfo worker;
    GrpcClientRequest<GenerateRequest, GenerateEvent> call;
    GrpcClientResponse<GenerateRequest, GenerateEvent> response;
    boolean released;

    Attempt(WorkerInfo worker) {
      this.worker = worker;
    }
  }

  private final RoutingGenerator router;
  private final Context context;
  private final GenerateRequest request;
  private final GenerationListener listener;
  private final String affinityKey;
  // The caller's gRPC deadline (null when none): every attempt carries what is left of it.
  private final Deadline deadline;
  private final Set<String> tried = new HashSet<>();
  // Token ids delivered to the listener, in order (after the request's own resume ids).
  private final List<Integer> delivered = new ArrayList<>();
  private Long seed;
  private boolean started;
  private boolean done;
  private boolean paused;
  private boolean onlyExhausted = true;
  private String lastFailure = "";
  private Attempt current;
  private long deadlineTimer = -1;

  Relay(
      RoutingGenerator router,
      Context context,
      GenerateRequest request,
      GenerationListener listener) {
    this.router = router;
    this.context = context;
    this.request = request;
    this.listener = listener;
    this.affinityKey = router.policy.affinityKey(request.getPrompt());
    this.deadline = io.grpc.Context.current().getDeadline();
    if (request.getSampling().hasSeed()) {
      seed = request.getSampling().getSeed();
    }
  }

  void start() {
    // NOTE: always a later turn of the context, so that no listener callback (not even "no
    // worker") runs before generate() has returned the stream to its caller.
    context.runOnContext(v -> next());
    if (deadline != null) {
      // NOTE: our own timer, not the gRPC client's: a call the client cancels on its deadline
      // ends without an event on its response, and a hung worker may never answer.
      long millis = Math.max(1, deadline.timeRemaining(TimeUnit.MILLISECONDS));
      deadlineTimer = context.owner().setTimer(millis, id -> onContext(this::deadlinePassed));
    }
  }

  private void deadlinePassed() {
    deadlineTimer = -1;
    if (done) {
      return;
    }
    Attempt a = current;
    current = null;
    if (a != null) {
      abandon(a);
    }
    fail(
        new GenerationException(
            GenerationException.Kind.DEADLINE_EXCEEDED,
            "the deadline passed after " + delivered.size() + " tokens"));
  }

  /** The sequence is over: stop its deadline timer and let the router forget it. */
  private void closed() {
    if (deadlineTimer >= 0) {
      context.owner().cancelTimer(deadlineTimer);
      deadlineTimer = -1;
    }
    router.closed(this);
  }

  @Override
  public void cancel() {
    onContext(
        () -> {
          if (done) {
            return;
          }
          done = true;
          Attempt a = current;
          current = null;
          if (a != null) {
            abandon(a);
          }
          closed();
        });
  }

  @Override
  public void pause() {
    onContext(
        () -> {
          paused = true;
          if (current != null && current.response != null) {
            current.response.pause();
          }
        });
  }

  @Override
  public void resume() {
    onContext(
        () -> {
          paused = false;
          if (current != null && current.response != null) {
            current.response.resume();
          }
        });
  }

  /**
   * The watchdog: a worker that left while serving us (missing from {@code live}, the directory's
   * {@link dev.starserve.gateway.cluster.WorkerView#reachable()}) is given up on.
   */
  void checkWorker(Map<String, WorkerInfo> live) {
    onContext(
        () -> {
          Attempt a = current;
          if (!done && a != null && !live.containsKey(a.worker.getWorkerId())) {
            failed(a, GrpcStatus.UNAVAILABLE, "worker " + a.worker.getWorkerId() + " left");
          }
        });
  }

  private void next() {
    if (done) {
      return;
    }
    List<WorkerInfo> candidates = router.candidates(request.getModelId());
    if (tried.size() >= router.settings.maxAttempts()) {
      fail(exhausted("gave up after " + tried.size() + " workers"));
      return;
    }
    WorkerInfo w = router.policy.choose(candidates, affinityKey, router::inFlight, tried);
    if (w == null) {
      fail(
          tried.isEmpty()
              ? router.noWorker(request.getModelId(), candidates, false)
              : exhausted("no other worker left after " + tried.size()));
      return;
    }
    if (!tried.isEmpty()) {
      if (delivered.isEmpty()) {
        router.events.retried(w.getModelId());
      } else {
        router.events.failedOver(w.getModelId());
      }
      LOG.debug(
          "request {} moves to worker {} after {} tokens",
          request.getRequestId(),
          w.getWorkerId(),
          delivered.size());
    }
    long remainingMillis = 0;
    if (deadline != null) {
      remainingMillis = deadline.timeRemaining(TimeUnit.MILLISECONDS);
      if (remainingMillis <= 0) {
        fail(
            new GenerationException(
                GenerationException.Kind.DEADLINE_EXCEEDED,
                "the deadline passed after " + delivered.size() + " tokens"));
        return;
      }
    }
    long timeoutMillis = remainingMillis;
    tried.add(w.getWorkerId());
    Attempt a = new Attempt(w);
    current = a;
    router.acquire(w.getWorkerId());
    WorkerClients.Client client;
    try {
      client = router.clients.get(w.getAddress());
    } catch (IllegalArgumentException e) {
      failed(a, GrpcStatus.UNAVAILABLE, e.getMessage());
      return;
    }
    GenerateRequest attemptRequest = attemptRequest();
    client
        .grpc()
        .request(client.address(), WorkerServiceGrpc.getGenerateMethod())
        .onComplete(
            ar -> {
              if (ar.failed()) {
                onContext(() -> failed(a, GrpcStatus.UNAVAILABLE, String.valueOf(ar.cause())));
                return;
              }
              GrpcClientRequest<GenerateRequest, GenerateEvent> call = ar.result();
              a.call = call;
              if (a != current || done) {
                call.cancel();
                return;
              }
              if (!router.settings.secret().isEmpty()) {
                call.headers().set(RoutingGenerator.SECRET_HEADER, router.settings.secret());
              }
              if (timeoutMillis > 0) {
                // grpc-timeout: the worker ends the call and frees its blocks when it passes.
                call.timeout(timeoutMillis, TimeUnit.MILLISECONDS);
              }
              call.send(attemptRequest)
                  .onComplete(
                      rr -> {
                        if (rr.failed()) {
                          Throwable t = rr.cause();
                          onContext(
                              () -> failed(a, RoutingGenerator.statusOf(t), String.valueOf(t)));
                          return;
                        }
                        // NOTE: handlers are set right here, not after a context hop, so that no
                        // message can arrive before them.
                        GrpcClientResponse<GenerateRequest, GenerateEvent> response = rr.result();
                        a.response = response;
                        if (paused) {
                          response.pause();
                        }
                        response.handler(event -> onContext(() -> onEvent(a, event)));
                        response.exceptionHandler(
                            t ->
                                onContext(
                                    () ->
                                        failed(
                                            a, RoutingGenerator.statusOf(t), String.valueOf(t))));
                        response.endHandler(v -> onContext(() -> onEnd(a, response)));
                      });
            });
  }

  private GenerateRequest attemptRequest() {
    if (delivered.isEmpty() && (seed == null || request.getSampling().hasSeed())) {
      return request;
    }
    GenerateRequest.Builder b = request.toBuilder().addAllResumeTokenIds(delivered);
    if (seed != null) {
      b.getSamplingBuilder().setSeed(seed);
    }
    return b.build();
  }

  private void onEvent(Attempt a, GenerateEvent event) {
    if (a != current || done) {
      return;
    }
    switch (event.getKindCase()) {
      case STARTED -> {
        seed = event.getStarted().getSeed();
        if (!started) {
          started = true;
          deliver(() -> listener.onStarted(event.getStarted()));
        }
      }
      case TOKENS -> {
        int next = request.getResumeTokenIdsCount() + delivered.size();
        Tokens.Builder fresh = Tokens.newBuilder();
        for (Token t : event.getTokens().getTokensList()) {
          if (t.getIndex() < next) {
            continue; // already delivered (a worker that repeats itself)
          }
          if (t.getIndex() > next) {
            LOG.warn(
                "worker {} skipped token {} of request {}; giving up on it",
                a.worker.getWorkerId(),
                next,
                request.getRequestId());
            failed(a, GrpcStatus.INTERNAL, "token index gap");
            return;
          }
          fresh.addTokens(t);
          delivered.add(t.getId());
          next++;
        }
        if (fresh.getTokensCount() > 0) {
          Tokens out = fresh.build();
          deliver(() -> listener.onTokens(out));
        }
      }
      case FINISHED -> {
        Finished finished = event.getFinished();
        done = true;
        current = null;
        release(a);
        closed();
        deliver(() -> listener.onFinished(finished));
      }
      case KIND_NOT_SET -> {}
    }
  }

  private void onEnd(Attempt a, GrpcClientResponse<GenerateRequest, GenerateEvent> response) {
    if (a != current || done) {
      return;
    }
    GrpcStatus status = response.status();
    if (status == null || status == GrpcStatus.OK) {
      failed(a, GrpcStatus.UNAVAILABLE, "the stream ended without Finished");
    } else {
      failed(a, status, response.statusMessage());
    }
  }

  /** The attempt is over without a Finished: retry, fail over or give up. */
  private void failed(Attempt a, GrpcStatus status, String message) {
    if (a != current || done) {
      return;
    }
    current = null;
    abandon(a);
    String why = "worker " + a.worker.getWorkerId() + ": " + status.name() + " " + message;
    switch (status) {
      case INVALID_ARGUMENT, OUT_OF_RANGE, FAILED_PRECONDITION ->
          fail(new GenerationException(GenerationException.Kind.INVALID_ARGUMENT, message));
      case DEADLINE_EXCEEDED ->
          fail(
              new GenerationException(
                  GenerationException.Kind.DEADLINE_EXCEEDED,
                  "the deadline passed after " + delivered.size() + " tokens (" + why + ")"));
      case UNAUTHENTICATED, PERMISSION_DENIED ->
          fail(
              new GenerationException(
                  GenerationException.Kind.GENERATION_FAILED,
                  "the worker refused the gateway (" + why + "); check the cluster secret"));
      default -> {
        if (status != GrpcStatus.RESOURCE_EXHAUSTED) {
          onlyExhausted = false;
        }
        lastFailure = why;
        LOG.info("request {} lost {}", request.getRequestId(), why);
        next();
      }
    }
  }

  private GenerationException exhausted(String what) {
    if (onlyExhausted && delivered.isEmpty()) {
      return new GenerationException(
          GenerationException.Kind.OVERLOADED, "every worker is full (" + what + ")");
    }
    return new GenerationException(
        GenerationException.Kind.UNAVAILABLE, what + "; last: " + lastFailure);
  }

  private void abandon(Attempt a) {
    if (a.call != null) {
      try {
        a.call.cancel(); // the worker aborts the request and frees its KV blocks
      } catch (RuntimeException e) {
        LOG.debug("cancel after the end: {}", e.toString());
      }
    }
    release(a);
  }

  private void release(Attempt a) {
    if (!a.released) {
      a.released = true;
      router.release(a.worker.getWorkerId());
    }
  }

  private void fail(GenerationException e) {
    if (done) {
      return;
    }
    done = true;
    closed();
    deliver(() -> listener.onError(e));
  }

  private void deliver(Runnable callback) {
    try {
      callback.run();
    } catch (RuntimeException e) {
      LOG.warn("generation listener of request {} failed", request.getRequestId(), e);
    }
  }

  private void onContext(Runnable action) {
    if (Vertx.currentContext() == context) {
      action.run();
    } else {
      context.runOnContext(v -> action.run());
    }
  }
}
