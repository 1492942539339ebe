package dev.starserve.worker.api;

import dev.starserve.engine.FinishEvent;
import dev.starserve.engine.RequestSink;
import dev.starserve.engine.TokenEvent;
import dev.starserve.proto.worker.v1.Finished;
import dev.starserve.proto.worker.v1.GenerateEvent;
import dev.starserve.proto.worker.v1.Started;
import dev.starserve.proto.worker.v1.Token;
import dev.starserve.proto.worker.v1.Tokens;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.vertx.core.Context;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;

/**
 * One Generate call: the engine's sink on one side, the gRPC response stream on the other.
 *
 * <pre>
 * engine thread: onToken/onFinish ─► queue (bounded by maxPending) ─► runOnContext(flush)
 * Vert.x context: flush ─► while isReady: Started | Tokens(all queued tokens) | Finished
 *                 onReady ─► flush;  cancel / deadline ─► abort (idempotent)
 * </pre>
 *
 * The sink never blocks and never touches the stream; everything that writes runs on the call's
 * Vert.x context. Tokens queued while the reader is slow leave together as one Tokens message; more
 * than {@code maxPending} queued events abort the request and fail the call with
 * RESOURCE_EXHAUSTED.
 */
final class GenerateCall implements RequestSink {
  /** What the service learns from a call. */
  interface Listener {
    /** The engine is done with the request (its KV blocks are free); on the engine thread. */
    void engineDone(GenerateCall call);

    /** The call has its status (a finish reason or an error status); on the Vert.x context. */
    void callEnded(GenerateCall call, String outcome);
  }

  private record PromptLogprobs(List<FinishEvent.PromptLogprob> logprobs) {}

  private final String requestId;
  private final Context context;
  private final ServerCallStreamObserver<GenerateEvent> out;
  private final int maxPending;
  private final Function<List<FinishEvent.PromptLogprob>, Started> started;
  private final boolean startedWaitsForLogprobs;
  private final Function<TokenEvent, Token> tokens;
  private final Function<FinishEvent, Finished> finished;
  private final Listener listener;
  private final ConcurrentLinkedQueue<Object> queue = new ConcurrentLinkedQueue<>();
  private final AtomicInteger pending = new AtomicInteger();
  private final AtomicBoolean flushScheduled = new AtomicBoolean();
  private final AtomicBoolean aborted = new AtomicBoolean();
  private volatile boolean overflowed;
  private volatile Status abortStatus; // set when the worker, not the client, aborts
  private volatile Runnable abort = () -> {};
  // Vert.x context only:
  private boolean startedSent;
  private boolean closed;

  /**
   * @param started builds the Started message from the prompt logprobs (null when not asked)
   * @param startedWaitsForLogprobs Started waits for the prompt's logprobs (sent before the first
   *     token) instead of leaving at once
   */
  GenerateCall(
      String requestId,
      Context context,
      ServerCallStreamObserver<GenerateEvent> out,
      int maxPending,
      Function<List<FinishEvent.PromptLogprob>, Started> started,
      boolean startedWaitsForLogprobs,
      Function<TokenEvent, Token> tokens,
      Function<FinishEvent, Finished> finished,
      Listener listener) {
    this.requestId = requestId;
    this.context = context;
    this.out = out;
    this.maxPending = maxPending;
    this.started = started;
    this.startedWaitsForLogprobs = startedWaitsForLogprobs;
    this.tokens = tokens;
    this.finished = finished;
    this.listener = listener;
  }

  String requestId() {
    return requestId;
  }

  /** Hooks the stream's readiness and cancellation; call on the context before submitting. */
  void attach() {
    out.setOnReadyHandler(this::flush);
    out.setOnCancelHandler(() -> cancelled("cancelled"));
    if (!startedWaitsForLogprobs) {
      enqueue(started.apply(null));
    }
  }

  /**
   * The client went away or the deadline passed: aborts the request and ends the call without
   * writing more. Idempotent; on the call's context.
   */
  void cancelled(String outcome) {
    abort();
    if (!closed) {
      closed = true;
      queue.clear();
      listener.callEnded(this, outcome);
    }
  }

  /** Context, for hops from other threads. */
  Context context() {
    return context;
  }

  /** The engine accepted the request: this aborts it. */
  void submitted(Runnable abortRequest) {
    this.abort = abortRequest;
    if (aborted.get()) {
      abortRequest.run(); // cancelled while being submitted
    }
  }

  /** Aborts the request on the engine; idempotent. */
  void abort() {
    aborted.set(true);
    abort.run();
  }

  /** Aborts the request and ends the call with {@code status} instead of a Finished event. */
  void abortWith(Status status) {
    abortStatus = status;
    abort();
    // NOTE: ends the call now, dropping what is queued: the client keeps a gap-free prefix of the
    // stream, from which a gateway resumes elsewhere.
    context.runOnContext(v -> flush());
  }

  // ---- engine thread ----

  @Override
  public void onPromptLogprobs(String id, List<FinishEvent.PromptLogprob> logprobs) {
    if (startedWaitsForLogprobs) {
      enqueue(new PromptLogprobs(logprobs));
    }
  }

  @Override
  public void onToken(TokenEvent event) {
    enqueue(event);
  }

  @Override
  public void onFinish(FinishEvent event) {
    listener.engineDone(this);
    enqueue(event);
  }

  private void enqueue(Object event) {
    if (overflowed) {
      return;
    }
    if (pending.incrementAndGet() > maxPending) {
      overflowed = true;
      abort();
    } else {
      queue.add(event);
    }
    if (flushScheduled.compareAndSet(false, true)) {
      context.runOnContext(v -> flush());
    }
  }

  // ---- Vert.x context ----

  private void flush() {
    flushScheduled.set(false);
    if (closed) {
      queue.clear();
      return;
    }
    Status aborted = abortStatus;
    if (aborted != null) {
      fail(aborted, aborted.getCode().name().toLowerCase(java.util.Locale.ROOT));
      return;
    }
    if (overflowed) {
      fail(
          Status.RESOURCE_EXHAUSTED.withDescription(
              "the reader is too slow: more than "
                  + maxPending
                  + " events pending (--max-pending-events); request aborted"),
          "resource_exhausted");
      return;
    }
    while (!closed && out.isReady()) {
      Object head = queue.poll();
      if (head == null) {
        return;
      }
      pending.decrementAndGet();
      switch (head) {
        case Started s -> send(GenerateEvent.newBuilder().setStarted(s).build());
        case PromptLogprobs p -> sendStarted(p.logprobs());
        case TokenEvent t -> {
          sendStarted(null);
          Tokens.Builder batch = Tokens.newBuilder().addTokens(tokens.apply(t));
          while (queue.peek() instanceof TokenEvent next) {
            queue.poll();
            pending.decrementAndGet();
            batch.addTokens(tokens.apply(next));
          }
          send(GenerateEvent.newBuilder().setTokens(batch).build());
        }
        case FinishEvent f -> finish(f);
        default -> throw new IllegalStateException("unknown event " + head);
      }
    }
  }

  private void sendStarted(List<FinishEvent.PromptLogprob> logprobs) {
    if (!startedSent) {
      send(GenerateEvent.newBuilder().setStarted(started.apply(logprobs)).build());
    }
  }

  private void send(GenerateEvent e) {
    if (e.hasStarted()) {
      startedSent = true;
    }
    out.onNext(e);
  }

  private void finish(FinishEvent f) {
    sendStarted(f.promptLogprobs());
    Finished fin = finished.apply(f);
    send(GenerateEvent.newBuilder().setFinished(fin).build());
    closed = true;
    out.onCompleted();
    listener.callEnded(this, fin.getReason().name().toLowerCase(java.util.Locale.ROOT));
  }

  private void fail(Status status, String outcome) {
    closed = true;
    queue.clear();
    out.onError(status.asRuntimeException());
    listener.callEnded(this, outcome);
  }
}
