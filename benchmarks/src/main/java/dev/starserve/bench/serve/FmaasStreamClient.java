package dev.starserve.bench.serve;

import dev.starserve.proto.fmaas.DecodingMethod;
import dev.starserve.proto.fmaas.GenerationRequest;
import dev.starserve.proto.fmaas.GenerationResponse;
import dev.starserve.proto.fmaas.GenerationServiceGrpc;
import dev.starserve.proto.fmaas.Parameters;
import dev.starserve.proto.fmaas.SingleGenerationRequest;
import dev.starserve.proto.fmaas.StopReason;
import dev.starserve.proto.fmaas.StoppingCriteria;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClientAgent;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClientRequest;
import io.vertx.grpc.client.GrpcClientResponse;
import io.vertx.grpc.client.InvalidStatusException;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpcio.client.GrpcIoClient;

/**
 * TGIS {@code fmaas.GenerationService/GenerateStream} over cleartext HTTP/2 with the grpc-java
 * message classes: {@code GREEDY}, {@code max_new_tokens} = {@code min_new_tokens} = the generation
 * length (so exactly that many tokens). The first message carries {@code input_token_count}; every
 * later one the running {@code generated_token_count}; the last a stop reason.
 */
final class FmaasStreamClient implements StreamClient {
  /** Streams per HTTP/2 connection before the pool opens another (servers allow 100 or more). */
  private static final int STREAMS_PER_CONNECTION = 64;

  private final HttpClientAgent http;
  private final GrpcIoClient grpc;
  private final SocketAddress address;
  private final String authorization;

  FmaasStreamClient(Vertx vertx, ServeBenchConfig config) {
    Target t = config.target();
    this.address = SocketAddress.inetSocketAddress(t.port(), t.host());
    this.authorization = config.apiKey() == null ? null : "Bearer " + config.apiKey();
    this.http =
        vertx.createHttpClient(
            new HttpClientOptions()
                .setProtocolVersion(HttpVersion.HTTP_2)
                .setHttp2ClearTextUpgrade(false)
                .setHttp2MultiplexingLimit(STREAMS_PER_CONNECTION)
                .setConnectTimeout(HttpStreamClient.CONNECT_TIMEOUT_MILLIS),
            new PoolOptions()
                .setHttp2MaxSize(
                    (config.concurrency() + STREAMS_PER_CONNECTION - 1) / STREAMS_PER_CONNECTION));
    this.grpc = GrpcIoClient.client(vertx, http);
  }

  @Override
  public Cancellable send(BenchRequest request, StreamListener listener) {
    SingleGenerationRequest.Builder b =
        SingleGenerationRequest.newBuilder()
            .setRequest(GenerationRequest.newBuilder().setText(request.prompt()))
            .setParams(
                Parameters.newBuilder()
                    .setMethod(DecodingMethod.GREEDY)
                    .setStopping(
                        StoppingCriteria.newBuilder()
                            .setMaxNewTokens(request.maxNewTokens())
                            .setMinNewTokens(request.maxNewTokens())));
    if (request.model() != null) {
      b.setModelId(request.model());
    }
    SingleGenerationRequest message = b.build();
    Call call = new Call(listener);
    grpc.request(address, GenerationServiceGrpc.getGenerateStreamMethod())
        .onComplete(
            ar -> {
              if (ar.failed()) {
                call.fail(FailureKinds.of(ar.cause()), FailureKinds.describe(ar.cause()));
                return;
              }
              GrpcClientRequest<SingleGenerationRequest, GenerationResponse> r = ar.result();
              call.request = r;
              if (call.cancelled) {
                r.cancel();
                return;
              }
              if (authorization != null) {
                r.headers().set("authorization", authorization);
              }
              r.send(message)
                  .onComplete(
                      rr -> {
                        if (rr.failed()) {
                          call.fail(rr.cause());
                          return;
                        }
                        GrpcClientResponse<SingleGenerationRequest, GenerationResponse> response =
                            rr.result();
                        response.handler(call::message);
                        response.exceptionHandler(call::fail);
                        response.endHandler(v -> call.end(response));
                      });
            });
    return call;
  }

  @Override
  public Future<Void> close() {
    return grpc.close().eventually(http::close);
  }

  /** One GenerateStream call: its counts so far and its cancel handle. */
  private static final class Call implements Cancellable {
    private final StreamListener listener;
    GrpcClientRequest<SingleGenerationRequest, GenerationResponse> request;
    boolean cancelled;
    private boolean over;
    private boolean stopped;
    private int inputTokens;
    private int generated;

    Call(StreamListener listener) {
      this.listener = listener;
    }

    void message(GenerationResponse m) {
      if (over) {
        return;
      }
      inputTokens = Math.max(inputTokens, m.getInputTokenCount());
      int now = m.getGeneratedTokenCount();
      if (now > generated) {
        if (generated == 0) {
          listener.firstToken();
        }
        listener.tokens(now - generated);
        generated = now;
      }
      if (m.getStopReason() != StopReason.NOT_FINISHED) {
        stopped = true;
      }
    }

    void end(GrpcClientResponse<SingleGenerationRequest, GenerationResponse> response) {
      GrpcStatus status = response.status();
      if (status != null && status != GrpcStatus.OK) {
        fail(FailureKinds.grpc(status.name()), status.name() + ": " + response.statusMessage());
      } else if (!stopped) {
        fail(FailureKinds.STREAM, "the stream ended without a message carrying a stop reason");
      } else if (!over) {
        over = true;
        listener.finished(inputTokens, generated);
      }
    }

    void fail(Throwable t) {
      if (t instanceof InvalidStatusException e) {
        fail(FailureKinds.grpc(e.actualStatus().name()), FailureKinds.describe(t));
      } else {
        fail(FailureKinds.of(t), FailureKinds.describe(t));
      }
    }

    void fail(String kind, String detail) {
      if (!over) {
        over = true;
        listener.failed(kind, detail);
      }
    }

    @Override
    public void cancel() {
      if (cancelled) {
        return;
      }
      cancelled = true;
      over = true;
      if (request != null) {
        request.cancel();
      }
    }
  }
}
