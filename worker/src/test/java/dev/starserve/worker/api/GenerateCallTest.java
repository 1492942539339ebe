package dev.starserve.worker.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.engine.FinishEvent;
import dev.starserve.engine.FinishReason;
import dev.starserve.engine.TokenEvent;
import dev.starserve.proto.worker.v1.Finished;
import dev.starserve.proto.worker.v1.GenerateEvent;
import dev.starserve.proto.worker.v1.Started;
import dev.starserve.proto.worker.v1.Token;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.vertx.core.Vertx;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The per-call bridge alone, with a stream whose readiness the test controls: tokens queued while
 * the reader is slow leave as one Tokens message, and a reader that stays slow past the bound gets
 * the request aborted and RESOURCE_EXHAUSTED.
 */
class GenerateCallTest {
  static Vertx vertx;
  static io.vertx.core.Context ctx;

  @BeforeAll
  static void start() {
    vertx = Vertx.vertx();
    ctx = vertx.getOrCreateContext();
  }

  @AfterAll
  static void stop() {
    WorkerFixture.await(vertx.close().toCompletionStage().toCompletableFuture());
  }

  /** A response stream that is ready only when the test says so. */
  static final class Stream extends ServerCallStreamObserver<GenerateEvent> {
    volatile boolean ready;
    Runnable onReady = () -> {};
    final List<GenerateEvent> sent = new CopyOnWriteArrayList<>();
    final CompletableFuture<Status> closed = new CompletableFuture<>();

    @Override
    public boolean isReady() {
      return ready;
    }

    @Override
    public void setOnReadyHandler(Runnable r) {
      onReady = r;
    }

    @Override
    public void setOnCancelHandler(Runnable r) {}

    @Override
    public boolean isCancelled() {
      return false;
    }

    @Override
    public void setCompression(String c) {}

    @Override
    public void disableAutoInboundFlowControl() {}

    @Override
    public void request(int n) {}

    @Override
    public void setMessageCompression(boolean e) {}

    @Override
    public void onNext(GenerateEvent e) {
      sent.add(e);
    }

    @Override
    public void onError(Throwable t) {
      closed.complete(Status.fromThrowable(t));
    }

    @Override
    public void onCompleted() {
      closed.complete(Status.OK);
    }
  }

  static GenerateCall call(Stream s, int maxPending, AtomicInteger aborts, List<String> outcomes) {
    GenerateCall c =
        new GenerateCall(
            "r",
            ctx,
            s,
            maxPending,
            lp -> Started.newBuilder().setInputTokenCount(3).build(),
            false,
            t -> Token.newBuilder().setIndex(t.index()).setId(t.tokenId()).build(),
            f ->
                Finished.newBuilder()
                    .setReason(dev.starserve.proto.worker.v1.FinishReason.LENGTH)
                    .setGeneratedTokenCount(f.generatedTokens())
                    .build(),
            new GenerateCall.Listener() {
              @Override
              public void engineDone(GenerateCall call) {}

              @Override
              public void callEnded(GenerateCall call, String outcome) {
                outcomes.add(outcome);
              }
            });
    onContext(c::attach); // as the service does: on the call's context, before submitting
    c.submitted(aborts::incrementAndGet);
    return c;
  }

  /** Runs {@code r} on the calls' context and waits: everything queued there before has run. */
  static void onContext(Runnable r) {
    CompletableFuture<Void> done = new CompletableFuture<>();
    ctx.runOnContext(
        v -> {
          r.run();
          done.complete(null);
        });
    WorkerFixture.await(done);
  }

  static TokenEvent token(int i) {
    return new TokenEvent("r", 0, i, 100 + i, "t", -1, List.of());
  }

  static FinishEvent finish(int n) {
    return new FinishEvent("r", 0, FinishReason.LENGTH, "", 3, n, 0, null, null, null);
  }

  @Test
  void tokensQueuedWhileTheReaderIsSlowLeaveAsOneMessage() {
    Stream s = new Stream();
    AtomicInteger aborts = new AtomicInteger();
    List<String> outcomes = new CopyOnWriteArrayList<>();
    GenerateCall c = call(s, 64, aborts, outcomes);
    for (int i = 0; i < 5; i++) {
      c.onToken(token(i));
    }
    c.onFinish(finish(5));
    onContext(() -> {}); // the flush the events scheduled has run
    assertTrue(s.sent.isEmpty(), "nothing is written while not ready");
    s.ready = true;
    onContext(s.onReady);
    assertEquals(Status.OK, WorkerFixture.await(s.closed));
    onContext(() -> {});
    assertEquals(3, s.sent.size(), s.sent.toString());
    assertTrue(s.sent.get(0).hasStarted());
    assertEquals(5, s.sent.get(1).getTokens().getTokensCount());
    assertEquals(4, s.sent.get(1).getTokens().getTokens(4).getIndex());
    assertEquals(5, s.sent.get(2).getFinished().getGeneratedTokenCount());
    assertEquals(0, aborts.get());
    assertEquals(List.of("length"), outcomes);
  }

  @Test
  void aReaderSlowerThanTheBoundAbortsTheRequestWithResourceExhausted() {
    Stream s = new Stream();
    AtomicInteger aborts = new AtomicInteger();
    List<String> outcomes = new CopyOnWriteArrayList<>();
    GenerateCall c = call(s, 8, aborts, outcomes);
    for (int i = 0; i < 7; i++) {
      c.onToken(token(i)); // with Started: 8 pending, at the bound
    }
    assertEquals(0, aborts.get(), "at the bound is fine");
    c.onToken(token(7));
    assertEquals(1, aborts.get(), "one past the bound aborts the request");
    Status st = WorkerFixture.await(s.closed);
    assertEquals(Status.Code.RESOURCE_EXHAUSTED, st.getCode());
    assertTrue(st.getDescription().contains("8"), st.getDescription());
    c.onFinish(finish(8)); // the engine's CANCELLED finish after the abort is dropped
    onContext(() -> {});
    assertEquals(List.of("resource_exhausted"), outcomes);
    assertTrue(s.sent.isEmpty());
  }
}
