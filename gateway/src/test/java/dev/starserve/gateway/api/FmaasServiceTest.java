package dev.starserve.gateway.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.gateway.GatewayLimits;
import dev.starserve.gateway.auth.ApiKeys;
import dev.starserve.gateway.testing.GatewayFixture;
import dev.starserve.proto.fmaas.BatchedGenerationRequest;
import dev.starserve.proto.fmaas.BatchedGenerationResponse;
import dev.starserve.proto.fmaas.BatchedTokenizeRequest;
import dev.starserve.proto.fmaas.BatchedTokenizeResponse;
import dev.starserve.proto.fmaas.DecodingMethod;
import dev.starserve.proto.fmaas.DecodingParameters;
import dev.starserve.proto.fmaas.GenerationRequest;
import dev.starserve.proto.fmaas.GenerationResponse;
import dev.starserve.proto.fmaas.GenerationServiceGrpc;
import dev.starserve.proto.fmaas.ModelInfoRequest;
import dev.starserve.proto.fmaas.ModelInfoResponse;
import dev.starserve.proto.fmaas.Parameters;
import dev.starserve.proto.fmaas.ResponseOptions;
import dev.starserve.proto.fmaas.SamplingParameters;
import dev.starserve.proto.fmaas.SingleGenerationRequest;
import dev.starserve.proto.fmaas.StopReason;
import dev.starserve.proto.fmaas.StoppingCriteria;
import dev.starserve.proto.fmaas.TokenizeRequest;
import dev.starserve.proto.worker.v1.GenerateRequest;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.reflection.v1.ServerReflectionGrpc;
import io.grpc.reflection.v1.ServerReflectionRequest;
import io.grpc.reflection.v1.ServerReflectionResponse;
import io.grpc.reflection.v1.ServiceResponse;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class FmaasServiceTest {
  private static final String KEY = "sk-test-1";
  private static GatewayFixture gw;
  private static ManagedChannel channel;
  private static GenerationServiceGrpc.GenerationServiceBlockingStub stub;

  @BeforeAll
  static void start() {
    gw = new GatewayFixture(GatewayLimits.defaults(), ApiKeys.of(Set.of(KEY)));
    channel =
        NettyChannelBuilder.forAddress("127.0.0.1", gw.server.grpcPort()).usePlaintext().build();
    stub = withKey(GenerationServiceGrpc.newBlockingStub(channel), KEY);
  }

  static GenerationServiceGrpc.GenerationServiceBlockingStub withKey(
      GenerationServiceGrpc.GenerationServiceBlockingStub s, String key) {
    Metadata m = new Metadata();
    m.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + key);
    return s.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(m))
        .withDeadlineAfter(20, TimeUnit.SECONDS);
  }

  @AfterAll
  static void stop() throws InterruptedException {
    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    gw.close();
  }

  @BeforeEach
  void reset() {
    gw.generator.requests.clear();
    gw.generator.eosAfter = 5;
  }

  private static Parameters greedy(int maxNewTokens) {
    return Parameters.newBuilder()
        .setStopping(StoppingCriteria.newBuilder().setMaxNewTokens(maxNewTokens))
        .build();
  }

  @Test
  void theClientsDeadlineIsCurrentWhenTheGeneratorIsCalledForBothMethods() {
    gw.generator.deadlines.clear();
    stub.withDeadlineAfter(7, TimeUnit.SECONDS)
        .generate(
            BatchedGenerationRequest.newBuilder()
                .addRequests(GenerationRequest.newBuilder().setText("a"))
                .addRequests(GenerationRequest.newBuilder().setText("b"))
                .setParams(greedy(2))
                .build());
    stub.withDeadlineAfter(7, TimeUnit.SECONDS)
        .generateStream(
            SingleGenerationRequest.newBuilder()
                .setRequest(GenerationRequest.newBuilder().setText("c"))
                .setParams(greedy(2))
                .build())
        .forEachRemaining(r -> {});
    assertEquals(3, gw.generator.deadlines.size());
    for (var d : gw.generator.deadlines) {
      assertTrue(d.isPresent(), "the generator saw the call's deadline");
      long left = d.get().timeRemaining(TimeUnit.MILLISECONDS);
      assertTrue(left <= 7_000, "at most what the client gave: " + left);
    }
  }

  @Test
  void streamPiecesConcatenateToTheUnaryText() {
    Parameters params = greedy(4);
    BatchedGenerationResponse unary =
        stub.generate(
            BatchedGenerationRequest.newBuilder()
                .setModelId("whatever")
                .addRequests(GenerationRequest.newBuilder().setText("def f("))
                .setParams(params)
                .build());
    GenerationResponse whole = unary.getResponses(0);
    assertEquals(" w0 w1 w2 w3", whole.getText());
    assertEquals(StopReason.MAX_TOKENS, whole.getStopReason());
    assertEquals(4, whole.getGeneratedTokenCount());
    assertEquals(6, whole.getInputTokenCount());
    assertEquals(0, whole.getSeed(), "greedy answers carry no seed");

    Iterator<GenerationResponse> it =
        stub.generateStream(
            SingleGenerationRequest.newBuilder()
                .setRequest(GenerationRequest.newBuilder().setText("def f("))
                .setParams(params)
                .build());
    List<GenerationResponse> pieces = new java.util.ArrayList<>();
    it.forEachRemaining(pieces::add);
    assertEquals(
        6, pieces.getFirst().getInputTokenCount(), "the first message has the prompt size");
    assertEquals("", pieces.getFirst().getText());
    StringBuilder text = new StringBuilder();
    pieces.forEach(p -> text.append(p.getText()));
    assertEquals(whole.getText(), text.toString());
    GenerationResponse last = pieces.getLast();
    assertEquals(StopReason.MAX_TOKENS, last.getStopReason());
    assertEquals(4, last.getGeneratedTokenCount());
    for (GenerationResponse p : pieces.subList(0, pieces.size() - 1)) {
      assertEquals(StopReason.NOT_FINISHED, p.getStopReason());
    }
  }

  @Test
  void batchedRequestsAnswerInOrderWithTgisOptions() {
    gw.generator.eosAfter = 1;
    Parameters params =
        Parameters.newBuilder()
            .setMethod(DecodingMethod.SAMPLE)
            .setSampling(SamplingParameters.newBuilder().setSeed(11).setTopK(3))
            .setResponse(
                ResponseOptions.newBuilder()
                    .setInputText(true)
                    .setGeneratedTokens(true)
                    .setInputTokens(true)
                    .setTokenLogprobs(true)
                    .setTokenRanks(true)
                    .setTopNTokens(2))
            .build();
    BatchedGenerationResponse r =
        stub.generate(
            BatchedGenerationRequest.newBuilder()
                .addRequests(GenerationRequest.newBuilder().setText("ab"))
                .addRequests(GenerationRequest.newBuilder().setText("xyz"))
                .setParams(params)
                .build());
    assertEquals(2, r.getResponsesCount());
    GenerationResponse a = r.getResponses(0);
    assertEquals("ab w0", a.getText());
    assertEquals("xyz w0", r.getResponses(1).getText());
    assertEquals(StopReason.EOS_TOKEN, a.getStopReason());
    assertEquals(11, a.getSeed());
    assertEquals(2, a.getTokensCount());
    assertEquals(" w0", a.getTokens(0).getText());
    assertEquals(-0.5f, a.getTokens(0).getLogprob());
    assertEquals(1, a.getTokens(0).getRank());
    assertEquals(2, a.getTokens(0).getTopTokensCount());
    assertEquals(2, a.getInputTokensCount());
    assertEquals(-1f, a.getInputTokens(1).getLogprob());
    GenerateRequest sent = gw.generator.requests.getFirst();
    assertEquals(1f, sent.getSampling().getTemperature(), "SAMPLE without temperature is 1.0");
    assertEquals(3, sent.getSampling().getTopK());
    assertEquals(20, sent.getStopping().getMaxNewTokens(), "max_new_tokens 0 means 20");
    assertTrue(sent.getReturnPromptTokens());
  }

  @Test
  void greedyIgnoresSamplingParameters() {
    stub.generate(
        BatchedGenerationRequest.newBuilder()
            .addRequests(GenerationRequest.newBuilder().setText("a"))
            .setParams(
                Parameters.newBuilder()
                    .setSampling(SamplingParameters.newBuilder().setTemperature(0.7f).setSeed(5)))
            .build());
    GenerateRequest sent = gw.generator.requests.getFirst();
    assertEquals(0f, sent.getSampling().getTemperature());
    assertFalse(sent.getSampling().hasSeed());
  }

  private static Status.Code codeOf(Parameters params, BatchedGenerationRequest.Builder extra) {
    StatusRuntimeException e =
        assertThrows(
            StatusRuntimeException.class,
            () ->
                stub.generate(
                    extra
                        .addRequests(GenerationRequest.newBuilder().setText("a"))
                        .setParams(params)
                        .build()));
    return e.getStatus().getCode();
  }

  private static String messageOf(Parameters params, BatchedGenerationRequest.Builder extra) {
    try {
      stub.generate(
          extra.addRequests(GenerationRequest.newBuilder().setText("a")).setParams(params).build());
    } catch (StatusRuntimeException e) {
      assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode());
      return e.getStatus().getDescription();
    }
    throw new AssertionError("expected INVALID_ARGUMENT");
  }

  @Test
  void unsupportedAndOutOfRangeParametersAreInvalidArgumentNamingTheField() {
    assertTrue(
        messageOf(
                Parameters.getDefaultInstance(),
                BatchedGenerationRequest.newBuilder().setAdapterId("lora"))
            .contains("adapter_id"));
    assertTrue(
        messageOf(
                Parameters.getDefaultInstance(),
                BatchedGenerationRequest.newBuilder().setPrefixId("p"))
            .contains("prefix_id"));
    assertTrue(
        messageOf(
                Parameters.newBuilder()
                    .setDecoding(
                        DecodingParameters.newBuilder()
                            .setLengthPenalty(
                                DecodingParameters.LengthPenalty.newBuilder().setDecayFactor(1.1f)))
                    .build(),
                BatchedGenerationRequest.newBuilder())
            .contains("params.decoding.length_penalty"));
    assertTrue(
        messageOf(
                Parameters.newBuilder()
                    .setDecoding(DecodingParameters.newBuilder().setRegex("a+"))
                    .build(),
                BatchedGenerationRequest.newBuilder())
            .contains("params.decoding.regex"));
    assertTrue(
        messageOf(
                Parameters.newBuilder()
                    .setResponse(ResponseOptions.newBuilder().setTopNTokens(6))
                    .build(),
                BatchedGenerationRequest.newBuilder())
            .contains("params.response.top_n_tokens must be in [0, 5], got 6"));
    assertTrue(
        messageOf(greedy(5000), BatchedGenerationRequest.newBuilder())
            .contains("params.stopping.max_new_tokens must be in [0, 4096], got 5000"));
    assertTrue(
        messageOf(
                Parameters.newBuilder()
                    .setMethod(DecodingMethod.SAMPLE)
                    .setSampling(SamplingParameters.newBuilder().setTopP(1.5f))
                    .build(),
                BatchedGenerationRequest.newBuilder())
            .contains("params.sampling.top_p must be in [0, 1], got 1.5"));
    assertTrue(
        messageOf(
                Parameters.newBuilder()
                    .setStopping(
                        StoppingCriteria.newBuilder().setMaxNewTokens(3).setMinNewTokens(4))
                    .build(),
                BatchedGenerationRequest.newBuilder())
            .contains("params.stopping.min_new_tokens"));
    assertTrue(
        messageOf(
                Parameters.newBuilder()
                    .setStopping(
                        StoppingCriteria.newBuilder()
                            .addAllStopSequences(java.util.Collections.nCopies(17, "x")))
                    .build(),
                BatchedGenerationRequest.newBuilder())
            .contains("params.stopping.stop_sequences may hold at most 16"));
    assertTrue(gw.generator.requests.isEmpty());
  }

  @Test
  void tokenizeAndModelInfo() {
    BatchedTokenizeResponse t =
        stub.tokenize(
            BatchedTokenizeRequest.newBuilder()
                .addRequests(TokenizeRequest.newBuilder().setText("def f"))
                .addRequests(TokenizeRequest.newBuilder().setText("x"))
                .setReturnTokens(true)
                .setReturnOffsets(true)
                .build());
    assertEquals(2, t.getResponses(0).getTokenCount());
    assertEquals(List.of("def", " f"), t.getResponses(0).getTokensList());
    assertEquals(3, t.getResponses(0).getOffsets(1).getStart());
    assertEquals(5, t.getResponses(0).getOffsets(1).getEnd());
    assertEquals(1, t.getResponses(1).getTokenCount());
    ModelInfoResponse info = stub.modelInfo(ModelInfoRequest.getDefaultInstance());
    assertEquals(ModelInfoResponse.ModelKind.DECODER_ONLY, info.getModelKind());
    assertEquals(8192, info.getMaxSequenceLength());
    assertEquals(4096, info.getMaxNewTokens());
  }

  @Test
  void missingOrWrongKeyIsUnauthenticatedButHealthStaysOpen() {
    var bare = GenerationServiceGrpc.newBlockingStub(channel);
    StatusRuntimeException e =
        assertThrows(
            StatusRuntimeException.class,
            () -> bare.modelInfo(ModelInfoRequest.getDefaultInstance()));
    assertEquals(Status.Code.UNAUTHENTICATED, e.getStatus().getCode());
    StatusRuntimeException wrong =
        assertThrows(
            StatusRuntimeException.class,
            () -> withKey(bare, "sk-nope").modelInfo(ModelInfoRequest.getDefaultInstance()));
    assertEquals(Status.Code.UNAUTHENTICATED, wrong.getStatus().getCode());
    HealthCheckResponse health =
        HealthGrpc.newBlockingStub(channel)
            .check(HealthCheckRequest.newBuilder().setService("fmaas.GenerationService").build());
    assertEquals(HealthCheckResponse.ServingStatus.SERVING, health.getStatus());
  }

  @Test
  void reflectionListsTheGenerationService() throws Exception {
    CompletableFuture<ServerReflectionResponse> answer = new CompletableFuture<>();
    StreamObserver<ServerReflectionRequest> requests =
        ServerReflectionGrpc.newStub(channel)
            .serverReflectionInfo(
                new StreamObserver<>() {
                  @Override
                  public void onNext(ServerReflectionResponse value) {
                    answer.complete(value);
                  }

                  @Override
                  public void onError(Throwable t) {
                    answer.completeExceptionally(t);
                  }

                  @Override
                  public void onCompleted() {}
                });
    requests.onNext(ServerReflectionRequest.newBuilder().setListServices("*").build());
    List<String> names =
        answer.get(10, TimeUnit.SECONDS).getListServicesResponse().getServiceList().stream()
            .map(ServiceResponse::getName)
            .toList();
    requests.onCompleted();
    assertTrue(names.contains("fmaas.GenerationService"), names.toString());
    assertTrue(names.contains("grpc.health.v1.Health"), names.toString());
  }

  @Test
  void unknownModelWithSeveralServedIsNotFound() {
    var saved = gw.generator.models;
    gw.generator.models =
        List.of(saved.getFirst(), saved.getFirst().toBuilder().setModelId("other").build());
    try {
      assertEquals(
          Status.Code.NOT_FOUND,
          codeOf(
              Parameters.getDefaultInstance(),
              BatchedGenerationRequest.newBuilder().setModelId("nope")));
    } finally {
      gw.generator.models = saved;
    }
  }

  @Test
  void streamWithInputTextAndTokensSendsThemWhereTgisDoes() {
    Iterator<GenerationResponse> it =
        stub.generateStream(
            SingleGenerationRequest.newBuilder()
                .setRequest(GenerationRequest.newBuilder().setText("ab"))
                .setParams(
                    Parameters.newBuilder()
                        .setMethod(DecodingMethod.SAMPLE)
                        .setSampling(SamplingParameters.newBuilder().setSeed(4))
                        .setStopping(StoppingCriteria.newBuilder().setMaxNewTokens(2))
                        .setResponse(
                            ResponseOptions.newBuilder()
                                .setInputText(true)
                                .setGeneratedTokens(true)
                                .setInputTokens(true)))
                .build());
    List<GenerationResponse> pieces = new java.util.ArrayList<>();
    it.forEachRemaining(pieces::add);
    GenerationResponse first = pieces.getFirst();
    assertEquals("ab", first.getText(), "input_text comes first");
    assertEquals(2, first.getInputTokensCount());
    assertEquals(" w0", pieces.get(1).getTokens(0).getText());
    assertEquals(1, pieces.get(1).getGeneratedTokenCount());
    GenerationResponse last = pieces.getLast();
    assertEquals(StopReason.MAX_TOKENS, last.getStopReason());
    assertEquals(4, last.getSeed());
    StringBuilder text = new StringBuilder();
    pieces.forEach(p -> text.append(p.getText()));
    assertEquals("ab w0 w1", text.toString());
  }
}
