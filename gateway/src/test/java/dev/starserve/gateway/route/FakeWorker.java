package dev.starserve.gateway.route;

import dev.starserve.proto.worker.v1.FinishReason;
import dev.starserve.proto.worker.v1.Finished;
import dev.starserve.proto.worker.v1.GenerateEvent;
import dev.starserve.proto.worker.v1.GenerateRequest;
import dev.starserve.proto.worker.v1.Started;
import dev.starserve.proto.worker.v1.Token;
import dev.starserve.proto.worker.v1.TokenizeRequest;
import dev.starserve.proto.worker.v1.TokenizeResponse;
import dev.starserve.proto.worker.v1.Tokens;
import dev.starserve.proto.worker.v1.WorkerInfo;
import dev.starserve.proto.worker.v1.WorkerServiceGrpc;
import dev.starserve.proto.worker.v1.WorkerState;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.grpcio.server.GrpcIoServer;
import io.vertx.grpcio.server.GrpcIoServiceBridge;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A WorkerService that "generates" a deterministic token sequence from the prompt text (so a
 * resumed request can be checked token by token), served by Vert.x on a random loopback port.
 */
final class FakeWorker implements AutoCloseable {
  enum Failure {
    /** Ends the call with UNAVAILABLE (a draining or closing worker). */
    STATUS,
    /** Closes the server and its connections (a process that died). */
    KILL,
    /** Stops sending and never ends (a hung worker). */
    HANG
  }

  static final long DEFAULT_SEED = 1234;
  static final Metadata.Key<String> SECRET =
      Metadata.Key.of(RoutingGenerator.SECRET_HEADER, Metadata.ASCII_STRING_MARSHALLER);

  final String id;
  final Vertx vertx;
  final HttpServer server;
  final List<GenerateRequest> requests = new CopyOnWriteArrayList<>();
  final List<String> secretsSeen = new CopyOnWriteArrayList<>();

  /** Per call: the milliseconds left of the deadline the call came with, or -1 without one. */
  final List<Long> deadlinesSeen = new CopyOnWriteArrayList<>();

  final AtomicInteger cancellations = new AtomicInteger();
  final AtomicInteger tokenizeCalls = new AtomicInteger();
  volatile int failAfterTokens = -1;
  volatile Failure failure = Failure.STATUS;
  volatile boolean exhausted;
  volatile long tokenDelayMillis = 2;
  volatile String requiredSecret = "";

  /** Sends tokens of 1 KiB text as fast as the transport takes them (for flow-control tests). */
  volatile boolean flood;

  final AtomicInteger emitted = new AtomicInteger();

  FakeWorker(Vertx vertx, String id) throws Exception {
    this.vertx = vertx;
    this.id = id;
    GrpcIoServer grpc = GrpcIoServer.server(vertx);
    ServerInterceptor secretCheck =
        new ServerInterceptor() {
          @Override
          public <Q, R> ServerCall.Listener<Q> interceptCall(
              ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
            String secret = headers.get(SECRET);
            secretsSeen.add(secret == null ? "" : secret);
            io.grpc.Deadline deadline = io.grpc.Context.current().getDeadline();
            deadlinesSeen.add(
                deadline == null ? -1L : deadline.timeRemaining(TimeUnit.MILLISECONDS));
            if (!requiredSecret.isEmpty() && !requiredSecret.equals(secret)) {
              call.close(Status.UNAUTHENTICATED.withDescription("wrong secret"), new Metadata());
              return new ServerCall.Listener<>() {};
            }
            return next.startCall(call, headers);
          }
        };
    GrpcIoServiceBridge.bridge(ServerInterceptors.intercept(new Service(), secretCheck)).bind(grpc);
    server =
        vertx
            .createHttpServer(new HttpServerOptions().setHost("127.0.0.1").setPort(0))
            .requestHandler(grpc)
            .listen()
            .await(10, TimeUnit.SECONDS);
  }

  static int tokenAt(String prompt, int index) {
    return Math.floorMod(prompt.hashCode() * 31 + index * 7919, 49152);
  }

  String address() {
    return "127.0.0.1:" + server.actualPort();
  }

  WorkerInfo info(String model) {
    return WorkerInfo.newBuilder()
        .setWorkerId(id)
        .setAddress(address())
        .setModelId(model)
        .setMaxRunningSequences(8)
        .setKvBlocksTotal(100)
        .setState(WorkerState.READY)
        .build();
  }

  void kill() {
    server.close();
  }

  void killAndWait() throws Exception {
    server.close().await(10, TimeUnit.SECONDS);
  }

  @Override
  public void close() {
    server.close();
  }

  private final class Service extends WorkerServiceGrpc.WorkerServiceImplBase {
    @Override
    public void generate(GenerateRequest req, StreamObserver<GenerateEvent> out) {
      requests.add(req);
      ServerCallStreamObserver<GenerateEvent> obs = (ServerCallStreamObserver<GenerateEvent>) out;
      obs.setOnCancelHandler(() -> cancellations.incrementAndGet());
      if (exhausted) {
        out.onError(Status.RESOURCE_EXHAUSTED.withDescription("queue full").asRuntimeException());
        return;
      }
      String prompt = req.getPrompt().getText();
      for (int i = 0; i < req.getResumeTokenIdsCount(); i++) {
        if (req.getResumeTokenIds(i) != tokenAt(prompt, i)) {
          out.onError(
              Status.INVALID_ARGUMENT
                  .withDescription("resume_token_ids[" + i + "] is not this prompt's token")
                  .asRuntimeException());
          return;
        }
      }
      long seed = req.getSampling().hasSeed() ? req.getSampling().getSeed() : DEFAULT_SEED;
      out.onNext(
          GenerateEvent.newBuilder()
              .setStarted(Started.newBuilder().setSeed(seed).setInputTokenCount(prompt.length()))
              .build());
      int max = req.getStopping().getMaxNewTokens();
      if (flood) {
        flood(obs, prompt, max);
        return;
      }
      int failAfter = failAfterTokens;
      Failure how = failure;
      step(req, obs, prompt, req.getResumeTokenIdsCount(), max, 0, failAfter, how);
    }

    private void step(
        GenerateRequest req,
        ServerCallStreamObserver<GenerateEvent> out,
        String prompt,
        int index,
        int max,
        int sent,
        int failAfter,
        Failure how) {
      if (out.isCancelled()) {
        return;
      }
      if (sent == failAfter) {
        switch (how) {
          case STATUS ->
              out.onError(Status.UNAVAILABLE.withDescription("draining").asRuntimeException());
          case KILL -> kill();
          case HANG -> {}
        }
        return;
      }
      if (index >= max) {
        out.onNext(
            GenerateEvent.newBuilder()
                .setFinished(
                    Finished.newBuilder()
                        .setReason(FinishReason.LENGTH)
                        .setGeneratedTokenCount(max)
                        .setInputTokenCount(prompt.length()))
                .build());
        out.onCompleted();
        return;
      }
      int id = tokenAt(prompt, index);
      boolean sent1 =
          send(
              out,
              GenerateEvent.newBuilder()
                  .setTokens(
                      Tokens.newBuilder()
                          .addTokens(
                              Token.newBuilder().setIndex(index).setId(id).setText("<" + id + ">")))
                  .build());
      if (!sent1) {
        return;
      }
      vertx.setTimer(
          tokenDelayMillis, t -> step(req, out, prompt, index + 1, max, sent + 1, failAfter, how));
    }

    private void flood(ServerCallStreamObserver<GenerateEvent> out, String prompt, int max) {
      String text = "x".repeat(1024);
      int[] next = {0};
      Runnable pump =
          () -> {
            while (out.isReady() && !out.isCancelled() && next[0] < max) {
              int i = next[0]++;
              emitted.incrementAndGet();
              send(
                  out,
                  GenerateEvent.newBuilder()
                      .setTokens(
                          Tokens.newBuilder()
                              .addTokens(
                                  Token.newBuilder()
                                      .setIndex(i)
                                      .setId(tokenAt(prompt, i))
                                      .setText(text)))
                      .build());
            }
            if (next[0] == max && !out.isCancelled()) {
              next[0]++;
              send(
                  out,
                  GenerateEvent.newBuilder()
                      .setFinished(Finished.newBuilder().setReason(FinishReason.LENGTH))
                      .build());
              out.onCompleted();
            }
          };
      out.setOnReadyHandler(pump);
      pump.run();
    }

    // The gateway may cancel between the check and the write; the fake just stops then.
    private boolean send(ServerCallStreamObserver<GenerateEvent> out, GenerateEvent event) {
      try {
        out.onNext(event);
        return true;
      } catch (IllegalStateException e) {
        return false;
      }
    }

    @Override
    public void tokenize(TokenizeRequest req, StreamObserver<TokenizeResponse> out) {
      tokenizeCalls.incrementAndGet();
      TokenizeResponse.Builder r = TokenizeResponse.newBuilder();
      for (char c : req.getText().toCharArray()) {
        r.addIds(c);
      }
      out.onNext(r.build());
      out.onCompleted();
    }
  }
}
