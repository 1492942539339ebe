package dev.starserve.gateway.api.fmaas;

import dev.starserve.gateway.GatewayLimits;
import dev.starserve.gateway.api.Collector;
import dev.starserve.gateway.api.InvalidRequest;
import dev.starserve.gateway.api.Models;
import dev.starserve.gateway.api.SequenceGroup;
import dev.starserve.gateway.api.SequenceResult;
import dev.starserve.gateway.generate.GenerationException;
import dev.starserve.gateway.generate.Generator;
import dev.starserve.gateway.http.HttpErrors;
import dev.starserve.gateway.metrics.GatewayMetrics;
import dev.starserve.gateway.metrics.GatewayMetrics.Outcome;
import dev.starserve.gateway.metrics.RequestTimer;
import dev.starserve.proto.fmaas.BatchedGenerationRequest;
import dev.starserve.proto.fmaas.BatchedGenerationResponse;
import dev.starserve.proto.fmaas.BatchedTokenizeRequest;
import dev.starserve.proto.fmaas.BatchedTokenizeResponse;
import dev.starserve.proto.fmaas.GenerationRequest;
import dev.starserve.proto.fmaas.GenerationResponse;
import dev.starserve.proto.fmaas.GenerationServiceGrpc;
import dev.starserve.proto.fmaas.ModelInfoRequest;
import dev.starserve.proto.fmaas.ModelInfoResponse;
import dev.starserve.proto.fmaas.Parameters;
import dev.starserve.proto.fmaas.ResponseOptions;
import dev.starserve.proto.fmaas.SingleGenerationRequest;
import dev.starserve.proto.fmaas.StopReason;
import dev.starserve.proto.fmaas.TokenInfo;
import dev.starserve.proto.worker.v1.FinishReason;
import dev.starserve.proto.worker.v1.Finished;
import dev.starserve.proto.worker.v1.GenerateRequest;
import dev.starserve.proto.worker.v1.PromptToken;
import dev.starserve.proto.worker.v1.Started;
import dev.starserve.proto.worker.v1.Token;
import dev.starserve.proto.worker.v1.TokenizeRequest;
import dev.starserve.proto.worker.v1.TokenizeResponse;
import dev.starserve.proto.worker.v1.Tokens;
import dev.starserve.proto.worker.v1.WorkerInfo;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.vertx.core.Future;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

/**
 * {@code fmaas.GenerationService} (TGIS wire format) over a {@link Generator}. Calls arrive on a
 * Vert.x context through {@code GrpcIoServer}; nothing here blocks. Client cancellation and the
 * call's deadline cancel the sequences; the deadline also travels on to the workers (the bridge
 * makes the call's gRPC context, with its deadline, current while the methods run, and the router
 * reads it there). Streams pause while the client is not ready.
 */
public final class FmaasService extends GenerationServiceGrpc.GenerationServiceImplBase {
  private final Generator generator;
  private final GatewayLimits limits;
  private final GatewayMetrics metrics;

  public FmaasService(Generator generator, GatewayLimits limits, GatewayMetrics metrics) {
    this.generator = generator;
    this.limits = limits;
    this.metrics = metrics;
  }

  @Override
  public void generate(
      BatchedGenerationRequest request, StreamObserver<BatchedGenerationResponse> observer) {
    RequestTimer timer = metrics.startRequest("fmaas", "");
    try {
      FmaasRequests.rejectAdapters(
          request.hasPrefixId(),
          request.getPrefixId(),
          request.hasAdapterId(),
          request.getAdapterId());
      WorkerInfo model = Models.resolve(generator, request.getModelId(), true);
      timer.model(model.getModelId());
      List<String> texts =
          request.getRequestsList().stream().map(GenerationRequest::getText).toList();
      Parameters params = request.getParams();
      List<GenerateRequest> requests =
          FmaasRequests.requests(model.getModelId(), texts, params, limits, id());
      Collector collector = new Collector(requests.size());
      SequenceGroup group = SequenceGroup.start(generator, requests, timer, collector);
      onCancel(observer, group, timer);
      collector
          .future()
          .onSuccess(
              results -> {
                BatchedGenerationResponse.Builder out = BatchedGenerationResponse.newBuilder();
                for (int i = 0; i < results.size(); i++) {
                  out.addResponses(response(texts.get(i), params, results.get(i)));
                }
                timer.end(Outcome.SUCCESS);
                observer.onNext(out.build());
                observer.onCompleted();
              })
          .onFailure(e -> fail(observer, timer, e));
    } catch (InvalidRequest | GenerationException e) {
      fail(observer, timer, e);
    }
  }

  @Override
  public void generateStream(
      SingleGenerationRequest request, StreamObserver<GenerationResponse> observer) {
    RequestTimer timer = metrics.startRequest("fmaas", "");
    try {
      FmaasRequests.rejectAdapters(
          request.hasPrefixId(),
          request.getPrefixId(),
          request.hasAdapterId(),
          request.getAdapterId());
      WorkerInfo model = Models.resolve(generator, request.getModelId(), true);
      timer.model(model.getModelId());
      String text = request.getRequest().getText();
      Parameters params = request.getParams();
      List<GenerateRequest> requests =
          FmaasRequests.requests(model.getModelId(), List.of(text), params, limits, id());
      ServerCallStreamObserver<GenerationResponse> call =
          (ServerCallStreamObserver<GenerationResponse>) observer;
      ResponseOptions options = params.getResponse();
      boolean[] paused = new boolean[1];
      SequenceGroup[] groupRef = new SequenceGroup[1];
      SequenceGroup.Events events =
          new SequenceGroup.Events() {
            private Started started = Started.getDefaultInstance();

            private void send(GenerationResponse response) {
              try {
                call.onNext(response);
              } catch (RuntimeException e) {
                // NOTE: the transport closed the call (client reset, deadline) before we heard of
                // it; the client is gone, so stop generating.
                if (groupRef[0] != null && !groupRef[0].over()) {
                  groupRef[0].cancel();
                  timer.end(Outcome.CANCELLED);
                }
                return;
              }
              if (!call.isReady() && !paused[0] && groupRef[0] != null) {
                paused[0] = true;
                groupRef[0].pause();
              }
            }

            @Override
            public void started(int index, Started s) {
              started = s;
              GenerationResponse.Builder first =
                  GenerationResponse.newBuilder().setInputTokenCount(s.getInputTokenCount());
              if (options.getInputText()) {
                first.setText(text);
              }
              if (options.getInputTokens()) {
                addInputTokens(first, s, options);
              }
              send(first.build());
            }

            @Override
            public void tokens(int index, Tokens tokens) {
              if (tokens.getTokensCount() == 0) {
                return;
              }
              GenerationResponse.Builder piece = GenerationResponse.newBuilder();
              StringBuilder sb = new StringBuilder();
              for (Token t : tokens.getTokensList()) {
                sb.append(t.getText());
                if (options.getGeneratedTokens()) {
                  piece.addTokens(tokenInfo(t, options));
                }
              }
              piece
                  .setText(sb.toString())
                  .setGeneratedTokenCount(
                      tokens.getTokens(tokens.getTokensCount() - 1).getIndex() + 1);
              send(piece.build());
            }

            @Override
            public void finished(int index, Finished f) {
              GenerationResponse.Builder last =
                  GenerationResponse.newBuilder()
                      .setInputTokenCount(f.getInputTokenCount())
                      .setGeneratedTokenCount(f.getGeneratedTokenCount())
                      .setText(f.getTrailingText())
                      .setStopReason(stopReason(f.getReason()));
              if (f.getReason() == FinishReason.STOP_SEQUENCE) {
                last.setStopSequence(f.getStopSequence());
              }
              if (FmaasRequests.sampled(params)) {
                last.setSeed(started.getSeed());
              }
              send(last.build());
            }

            @Override
            public void completed() {
              timer.end(Outcome.SUCCESS);
              call.onCompleted();
            }

            @Override
            public void failed(GenerationException error) {
              fail(call, timer, error);
            }
          };
      call.setOnReadyHandler(
          () -> {
            if (paused[0] && groupRef[0] != null) {
              paused[0] = false;
              groupRef[0].resume();
            }
          });
      SequenceGroup group = SequenceGroup.start(generator, requests, timer, events);
      groupRef[0] = group;
      onCancel(observer, group, timer);
    } catch (InvalidRequest | GenerationException e) {
      fail(observer, timer, e);
    }
  }

  @Override
  public void tokenize(
      BatchedTokenizeRequest request, StreamObserver<BatchedTokenizeResponse> observer) {
    try {
      FmaasRequests.rejectAdapters(
          request.hasPrefixId(),
          request.getPrefixId(),
          request.hasAdapterId(),
          request.getAdapterId());
      if (request.getRequestsCount() > limits.maxN()) {
        throw new InvalidRequest(
            "requests",
            "requests may hold at most " + limits.maxN() + ", got " + request.getRequestsCount());
      }
      WorkerInfo model = Models.resolve(generator, request.getModelId(), true);
      List<Future<TokenizeResponse>> futures = new ArrayList<>();
      for (var r : request.getRequestsList()) {
        if (r.getText().length() > limits.maxPromptChars()) {
          throw new InvalidRequest(
              "requests.text",
              "requests.text must hold at most "
                  + limits.maxPromptChars()
                  + " characters, got "
                  + r.getText().length());
        }
        futures.add(
            generator.tokenize(
                model.getModelId(),
                TokenizeRequest.newBuilder()
                    .setText(r.getText())
                    .setReturnTokens(request.getReturnTokens())
                    .setReturnOffsets(request.getReturnOffsets())
                    .setTruncateInputTokens(request.getTruncateInputTokens())
                    .build()));
      }
      Future.all(futures)
          .onSuccess(
              all -> {
                BatchedTokenizeResponse.Builder out = BatchedTokenizeResponse.newBuilder();
                for (Future<TokenizeResponse> f : futures) {
                  TokenizeResponse r = f.result();
                  var one =
                      dev.starserve.proto.fmaas.TokenizeResponse.newBuilder()
                          .setTokenCount(r.getIdsCount());
                  if (request.getReturnTokens()) {
                    one.addAllTokens(r.getTokensList());
                  }
                  if (request.getReturnOffsets()) {
                    for (var o : r.getOffsetsList()) {
                      one.addOffsets(
                          dev.starserve.proto.fmaas.TokenizeResponse.Offset.newBuilder()
                              .setStart(o.getStart())
                              .setEnd(o.getEnd()));
                    }
                  }
                  out.addResponses(one);
                }
                observer.onNext(out.build());
                observer.onCompleted();
              })
          .onFailure(e -> observer.onError(status(e).asRuntimeException()));
    } catch (InvalidRequest | GenerationException e) {
      observer.onError(status(e).asRuntimeException());
    }
  }

  @Override
  public void modelInfo(ModelInfoRequest request, StreamObserver<ModelInfoResponse> observer) {
    try {
      WorkerInfo model = Models.resolve(generator, request.getModelId(), true);
      observer.onNext(
          ModelInfoResponse.newBuilder()
              .setModelKind(ModelInfoResponse.ModelKind.DECODER_ONLY)
              .setMaxSequenceLength(model.getMaxContext())
              .setMaxNewTokens(limits.maxNewTokens())
              .build());
      observer.onCompleted();
    } catch (GenerationException e) {
      observer.onError(status(e).asRuntimeException());
    }
  }

  private static String id() {
    return "fmaas-" + UUID.randomUUID();
  }

  /**
   * A client cancel cancels the sequences (idempotent, may come late). NOTE: a passed deadline
   * reaches us the same way: the Vert.x server ends the call with DEADLINE_EXCEEDED
   * (scheduleDeadlineAutomatically) and the client resets the stream. (A listener on the call's
   * gRPC {@code Context} was tried before and never heard the deadline; the cancel handler does.)
   */
  private static void onCancel(
      StreamObserver<?> observer, SequenceGroup group, RequestTimer timer) {
    ServerCallStreamObserver<?> call = (ServerCallStreamObserver<?>) observer;
    Runnable cancel =
        () -> {
          if (!group.over()) {
            group.cancel();
            timer.end(Outcome.CANCELLED);
          }
        };
    call.setOnCancelHandler(cancel::run);
    if (call.isCancelled()) {
      cancel.run();
    }
  }

  private static void fail(StreamObserver<?> observer, RequestTimer timer, Throwable e) {
    timer.end(
        e instanceof GenerationException ge
            ? HttpErrors.outcome(ge.kind())
            : e instanceof InvalidRequest ? Outcome.INVALID : Outcome.ERROR);
    try {
      observer.onError(status(e).asRuntimeException());
    } catch (RuntimeException closed) {
      // NOTE: the client went away first; nothing left to tell.
    }
  }

  static Status status(Throwable e) {
    if (e instanceof InvalidRequest) {
      return Status.INVALID_ARGUMENT.withDescription(e.getMessage());
    }
    if (e instanceof GenerationException ge) {
      Status s =
          switch (ge.kind()) {
            case INVALID_ARGUMENT -> Status.INVALID_ARGUMENT;
            case MODEL_NOT_FOUND -> Status.NOT_FOUND;
            case OVERLOADED -> Status.RESOURCE_EXHAUSTED;
            case UNAVAILABLE -> Status.UNAVAILABLE;
            case GENERATION_FAILED -> Status.INTERNAL;
            case DEADLINE_EXCEEDED -> Status.DEADLINE_EXCEEDED;
          };
      return s.withDescription(e.getMessage());
    }
    return Status.INTERNAL.withDescription(String.valueOf(e.getMessage()));
  }

  static StopReason stopReason(FinishReason reason) {
    return switch (reason) {
      case LENGTH -> StopReason.MAX_TOKENS;
      case EOS_TOKEN -> StopReason.EOS_TOKEN;
      case STOP_SEQUENCE -> StopReason.STOP_SEQUENCE;
      case TIME_LIMIT -> StopReason.TIME_LIMIT;
      case CANCELLED -> StopReason.CANCELLED;
      case CONTEXT_LENGTH -> StopReason.TOKEN_LIMIT;
      case ERROR -> StopReason.ERROR;
      case FINISH_REASON_UNSPECIFIED, UNRECOGNIZED -> StopReason.NOT_FINISHED;
    };
  }

  private static GenerationResponse response(String prompt, Parameters params, SequenceResult r) {
    ResponseOptions options = params.getResponse();
    Finished f = r.finished;
    GenerationResponse.Builder b =
        GenerationResponse.newBuilder()
            .setInputTokenCount(f.getInputTokenCount())
            .setGeneratedTokenCount(f.getGeneratedTokenCount())
            .setText(options.getInputText() ? prompt + r.text : r.text.toString())
            .setStopReason(stopReason(f.getReason()));
    if (f.getReason() == FinishReason.STOP_SEQUENCE) {
      b.setStopSequence(f.getStopSequence());
    }
    if (FmaasRequests.sampled(params)) {
      b.setSeed(r.started.getSeed());
    }
    if (options.getGeneratedTokens()) {
      for (Token t : r.tokens) {
        b.addTokens(tokenInfo(t, options));
      }
    }
    if (options.getInputTokens()) {
      addInputTokens(b, r.started, options);
    }
    return b.build();
  }

  private static void addInputTokens(
      GenerationResponse.Builder b, Started started, ResponseOptions options) {
    for (PromptToken t : started.getPromptTokensList()) {
      TokenInfo.Builder info = TokenInfo.newBuilder().setText(t.getText());
      if (options.getTokenLogprobs() && t.hasLogprob()) {
        info.setLogprob(Models.finite(t.getLogprob()));
      }
      // NOTE: the engine reports neither ranks nor alternatives for prompt tokens; they stay 0
      // and empty.
      b.addInputTokens(info);
    }
  }

  private static TokenInfo tokenInfo(Token t, ResponseOptions options) {
    TokenInfo.Builder info = TokenInfo.newBuilder().setText(t.getTokenText());
    if (options.getTokenLogprobs()) {
      info.setLogprob(Models.finite(t.getLogprob()));
    }
    if (options.getTokenRanks()) {
      // NOTE: the engine does not report ranks; the rank is known when the token is among the top
      // alternatives (we ask for at least FmaasRequests.RANK_WINDOW), otherwise it stays 0.
      for (int i = 0; i < t.getTopTokensCount(); i++) {
        if (t.getTopTokens(i).getId() == t.getId()) {
          info.setRank(i + 1);
          break;
        }
      }
    }
    for (int i = 0; i < Math.min(options.getTopNTokens(), t.getTopTokensCount()); i++) {
      info.addTopTokens(
          TokenInfo.TopToken.newBuilder()
              .setText(t.getTopTokens(i).getText())
              .setLogprob(Models.finite(t.getTopTokens(i).getLogprob())));
    }
    return info.build();
  }
}
