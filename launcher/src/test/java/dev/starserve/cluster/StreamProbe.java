package dev.starserve.cluster;

import dev.starserve.proto.fmaas.GenerationResponse;
import dev.starserve.proto.fmaas.SingleGenerationRequest;
import io.grpc.Status;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Watches one fmaas GenerateStream from the client side and can cancel it. A {@code slowReader}
 * asks for one message and never for more.
 */
final class StreamProbe
    implements ClientResponseObserver<SingleGenerationRequest, GenerationResponse> {
  /** Opens on the first message (or the end). */
  final CountDownLatch first = new CountDownLatch(1);

  /** Opens on the first message carrying a generated token (or the end). */
  final CountDownLatch firstToken = new CountDownLatch(1);

  /** Tokens generated so far, as the messages count them. */
  final AtomicInteger tokens = new AtomicInteger();

  /** The call's final status: OK, or the error it ended with (CANCELLED after {@link #cancel}). */
  final CompletableFuture<Status> done = new CompletableFuture<>();

  private final boolean slowReader;
  private volatile ClientCallStreamObserver<SingleGenerationRequest> call;

  StreamProbe(boolean slowReader) {
    this.slowReader = slowReader;
  }

  @Override
  public void beforeStart(ClientCallStreamObserver<SingleGenerationRequest> c) {
    call = c;
    if (slowReader) {
      c.disableAutoRequestWithInitial(1);
    }
  }

  @Override
  public void onNext(GenerationResponse r) {
    first.countDown();
    if (r.getGeneratedTokenCount() > 0) {
      tokens.set(r.getGeneratedTokenCount());
      firstToken.countDown();
    }
  }

  @Override
  public void onError(Throwable t) {
    done.complete(Status.fromThrowable(t));
    first.countDown();
    firstToken.countDown();
  }

  @Override
  public void onCompleted() {
    done.complete(Status.OK);
    first.countDown();
    firstToken.countDown();
  }

  /** Cancels the call as a client going away does; idempotent. */
  void cancel() {
    call.cancel("the test cancels", null);
  }
}
