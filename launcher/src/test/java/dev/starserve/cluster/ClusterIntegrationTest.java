package dev.starserve.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.hazelcast.core.Hazelcast;
import com.hazelcast.core.HazelcastInstance;
import dev.starserve.cli.InProcessWorker;
import dev.starserve.cli.Main;
import dev.starserve.engine.EngineStats;
import dev.starserve.gateway.ClusterGateway;
import dev.starserve.gateway.GatewayLimits;
import dev.starserve.gateway.auth.ApiKeys;
import dev.starserve.gateway.cluster.ClusterSettings;
import dev.starserve.gateway.cluster.HazelcastConfigs;
import dev.starserve.gateway.metrics.GatewayMetrics;
import dev.starserve.proto.fmaas.BatchedGenerationRequest;
import dev.starserve.proto.fmaas.BatchedTokenizeRequest;
import dev.starserve.proto.fmaas.BatchedTokenizeResponse;
import dev.starserve.proto.fmaas.DecodingMethod;
import dev.starserve.proto.fmaas.GenerationRequest;
import dev.starserve.proto.fmaas.GenerationResponse;
import dev.starserve.proto.fmaas.GenerationServiceGrpc;
import dev.starserve.proto.fmaas.ModelInfoRequest;
import dev.starserve.proto.fmaas.ModelInfoResponse;
import dev.starserve.proto.fmaas.Parameters;
import dev.starserve.proto.fmaas.ResponseOptions;
import dev.starserve.proto.fmaas.SingleGenerationRequest;
import dev.starserve.proto.fmaas.StopReason;
import dev.starserve.proto.fmaas.StoppingCriteria;
import dev.starserve.proto.fmaas.TokenizeRequest;
import dev.starserve.proto.worker.v1.WorkerState;
import dev.starserve.text.Tokenizer;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.grpc.stub.MetadataUtils;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import java.util.function.ToLongFunction;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real cluster in one JVM on loopback: one gateway and two workers (the tiny random-weight model,
 * each worker loading its own copy), three Hazelcast members under a unique cluster name (the
 * workers list the gateway's member in {@code --cluster-members}) and a shared cluster secret. Two
 * more gateways join the same member: one admitting a single sequence per model, one requiring an
 * API key. Every public API is called through a real client: the generated grpc-java {@code fmaas}
 * stub over grpc-netty-shaded and {@link HttpClient}.
 *
 * <p>The independent references: the model's own tokenizer, loaded here from the model directory
 * (token counts), the unary fmaas {@code Generate} (greedy text the other APIs must reproduce), the
 * workers' engine stats and their {@code /metrics} (who ran what, KV blocks, cancellations).
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class ClusterIntegrationTest {
  private static final String MODEL = "tiny";
  private static final int N_POSITIONS = 512; // the tiny shape's context
  private static final Duration WAIT = Duration.ofSeconds(30);
  private static final String SECRET = "itest-" + UUID.randomUUID();
  private static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
  private static final String PROMPT = "def fibonacci(n):\n    ";

  @TempDir static Path tmp;

  private static Tokenizer tokenizer;
  private static HazelcastInstance gatewayMember;
  private static Vertx vertx;
  private static ClusterGateway gateway;
  private static ClusterGateway limitedGateway;
  private static ClusterGateway keyedGateway;
  private static final List<InProcessWorker> workers = new ArrayList<>();
  private static final List<ManagedChannel> channels = new ArrayList<>();
  private static final Map<ClusterGateway, ManagedChannel> gatewayChannels = new HashMap<>();
  private static GenerationServiceGrpc.GenerationServiceBlockingStub fmaas;
  private static final HttpClient http =
      HttpClient.newBuilder()
          .version(HttpClient.Version.HTTP_1_1)
          .connectTimeout(Duration.ofSeconds(5))
          .build();

  @BeforeAll
  @Timeout(value = 180, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
  static void startCluster() throws Exception {
    Path model = tmp.resolve(MODEL);
    assertEquals(
        0,
        Main.run("make-model", "--shape", "tiny", "--dtype", "float32", "--out", model.toString()));
    tokenizer =
        Tokenizer.load(model.resolve("tokenizer.json"), model.resolve("tokenizer_config.json"));

    String cluster = "itest-" + UUID.randomUUID();
    int portStart = 21000 + ThreadLocalRandom.current().nextInt(20000);
    gatewayMember =
        Hazelcast.newHazelcastInstance(
            HazelcastConfigs.build(
                ClusterSettings.tcpIp(cluster, 0, "").withPortRange(portStart, 100)));
    String seed = "127.0.0.1:" + gatewayMember.getCluster().getLocalMember().getAddress().getPort();
    vertx = Vertx.vertx();
    gateway = startGateway(GatewayLimits.defaults(), ApiKeys.none());
    for (int i = 1; i <= 2; i++) {
      workers.add(
          InProcessWorker.start(
              SECRET,
              "--model",
              model.toString(),
              "--grpc-port",
              "0",
              "--worker-id",
              "itest-worker-" + i,
              "--threads",
              "1",
              "--kv-cache-blocks",
              "128",
              "--max-num-seqs",
              "8",
              "--drain-timeout",
              "2s",
              "--cluster-name",
              cluster,
              "--cluster-members",
              seed));
    }
    limitedGateway =
        startGateway(GatewayLimits.defaults().withMaxInFlightPerModel(1), ApiKeys.none());
    keyedGateway = startGateway(GatewayLimits.defaults(), ApiKeys.of(Set.of("k1")));
    for (ClusterGateway g : List.of(gateway, limitedGateway, keyedGateway)) {
      await(
          "the gateway lists both workers READY",
          () ->
              g.directory().snapshot().values().stream()
                      .filter(w -> w.getState() == WorkerState.READY)
                      .count()
                  == 2);
    }
    assertEquals(3, gatewayMember.getCluster().getMembers().size(), "gateway + two workers");
    fmaas = GenerationServiceGrpc.newBlockingStub(channel(gateway));
  }

  private static ClusterGateway startGateway(GatewayLimits limits, ApiKeys keys) throws Exception {
    ClusterGateway.Settings settings =
        new ClusterGateway.Settings("127.0.0.1", 0, 0, limits, keys, SECRET);
    return get(ClusterGateway.start(vertx, gatewayMember, settings, new GatewayMetrics(false)));
  }

  @AfterAll
  @Timeout(value = 120, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
  static void stopCluster() {
    for (ManagedChannel c : channels) {
      c.shutdownNow();
    }
    for (ClusterGateway g : new ClusterGateway[] {keyedGateway, limitedGateway, gateway}) {
      if (g != null) {
        quietly(() -> get(g.close()));
      }
    }
    for (InProcessWorker w : workers) {
      quietly(w::close);
    }
    if (gatewayMember != null) {
      quietly(gatewayMember::shutdown);
    }
    if (vertx != null) {
      quietly(() -> get(vertx.close()));
    }
  }

  // ---- 1. fmaas streaming = unary -------------------------------------------------------------

  @Test
  void fmaasGenerateStreamPiecesConcatenateToTheUnaryGreedyTextWithTheSameCounts() {
    Parameters params = greedy(16, 16);
    GenerationResponse unary = generate(fmaas, PROMPT, params);
    int promptTokens = tokenizer.encode(PROMPT).length;
    assertEquals(16, unary.getGeneratedTokenCount());
    assertEquals(StopReason.MAX_TOKENS, unary.getStopReason());
    assertEquals(promptTokens, unary.getInputTokenCount());
    assertFalse(unary.getText().isEmpty(), "16 greedy tokens decode to some text");

    List<GenerationResponse> pieces = new ArrayList<>();
    fmaas
        .withDeadlineAfter(30, TimeUnit.SECONDS)
        .generateStream(
            SingleGenerationRequest.newBuilder()
                .setModelId(MODEL)
                .setRequest(GenerationRequest.newBuilder().setText(PROMPT))
                .setParams(params)
                .build())
        .forEachRemaining(pieces::add);
    assertTrue(pieces.size() >= 3, "a first message, token pieces and a last one: " + pieces);
    StringBuilder text = new StringBuilder();
    pieces.forEach(p -> text.append(p.getText()));
    assertEquals(unary.getText(), text.toString());
    assertEquals(promptTokens, pieces.getFirst().getInputTokenCount());
    GenerationResponse last = pieces.getLast();
    assertEquals(16, last.getGeneratedTokenCount());
    assertEquals(StopReason.MAX_TOKENS, last.getStopReason());
    for (GenerationResponse p : pieces.subList(0, pieces.size() - 1)) {
      assertEquals(StopReason.NOT_FINISHED, p.getStopReason(), "only the last message ends it");
    }
  }

  // ---- 2. the HTTP APIs, Tokenize, ModelInfo, health ------------------------------------------

  @Test
  void openAiCompletionStreamedAndNotMatchFmaasGreedyWithSseFramingAndRightUsage() {
    GenerationResponse reference = generate(fmaas, PROMPT, greedy(12, 0));
    JsonObject body =
        new JsonObject()
            .put("model", MODEL)
            .put("prompt", PROMPT)
            .put("max_tokens", 12)
            .put("temperature", 0);

    HttpResponse<String> plain = post(gateway, "/v1/completions", body, null);
    assertEquals(200, plain.statusCode(), plain.body());
    JsonObject o = new JsonObject(plain.body());
    assertEquals("text_completion", o.getString("object"));
    JsonObject choice = o.getJsonArray("choices").getJsonObject(0);
    assertEquals(reference.getText(), choice.getString("text"));
    assertEquals(finishReason(reference), choice.getString("finish_reason"));
    JsonObject usage = usage(tokenizer.encode(PROMPT).length, reference.getGeneratedTokenCount());
    assertEquals(usage, o.getJsonObject("usage"));

    HttpResponse<String> streamed =
        post(
            gateway,
            "/v1/completions",
            body.copy()
                .put("stream", true)
                .put("stream_options", new JsonObject().put("include_usage", true)),
            null);
    assertEquals(200, streamed.statusCode(), streamed.body());
    assertTrue(
        streamed.headers().firstValue("content-type").orElse("").startsWith("text/event-stream"));
    List<String> events = sseData(streamed.body());
    assertEquals("[DONE]", events.getLast());
    StringBuilder text = new StringBuilder();
    String finish = null;
    JsonObject streamedUsage = null;
    for (String e : events.subList(0, events.size() - 1)) {
      JsonObject chunk = new JsonObject(e);
      assertEquals("text_completion", chunk.getString("object"));
      JsonArray choices = chunk.getJsonArray("choices");
      if (choices.isEmpty()) {
        streamedUsage = chunk.getJsonObject("usage");
        continue;
      }
      text.append(choices.getJsonObject(0).getString("text"));
      if (choices.getJsonObject(0).getString("finish_reason") != null) {
        finish = choices.getJsonObject(0).getString("finish_reason");
      }
    }
    assertEquals(reference.getText(), text.toString());
    assertEquals(finishReason(reference), finish);
    assertEquals(usage, streamedUsage);
  }

  @Test
  void openAiChatStreamedAndNotAgreeAndTheStreamEndsWithDone() {
    JsonObject body =
        new JsonObject()
            .put("model", MODEL)
            .put(
                "messages",
                new JsonArray()
                    .add(new JsonObject().put("role", "user").put("content", "Write a sort.")))
            .put("max_tokens", 10)
            .put("temperature", 0);
    HttpResponse<String> plain = post(gateway, "/v1/chat/completions", body, null);
    assertEquals(200, plain.statusCode(), plain.body());
    JsonObject o = new JsonObject(plain.body());
    assertEquals("chat.completion", o.getString("object"));
    JsonObject choice = o.getJsonArray("choices").getJsonObject(0);
    assertEquals("assistant", choice.getJsonObject("message").getString("role"));
    String content = choice.getJsonObject("message").getString("content");
    JsonObject usage = o.getJsonObject("usage");
    int completionTokens = usage.getInteger("completion_tokens");
    assertEquals(
        "length".equals(choice.getString("finish_reason")), completionTokens == 10, usage.encode());
    assertTrue(completionTokens >= 1 && completionTokens <= 10, usage.encode());
    assertTrue(
        usage.getInteger("prompt_tokens") > tokenizer.encode("Write a sort.").length,
        "the rendered chat holds more than the message: " + usage.encode());
    assertEquals(
        usage.getInteger("prompt_tokens") + completionTokens, usage.getInteger("total_tokens"));

    HttpResponse<String> streamed =
        post(
            gateway,
            "/v1/chat/completions",
            body.copy()
                .put("stream", true)
                .put("stream_options", new JsonObject().put("include_usage", true)),
            null);
    assertEquals(200, streamed.statusCode(), streamed.body());
    List<String> events = sseData(streamed.body());
    assertEquals("[DONE]", events.getLast());
    JsonObject first = new JsonObject(events.getFirst());
    assertEquals("chat.completion.chunk", first.getString("object"));
    assertEquals(
        "assistant",
        first.getJsonArray("choices").getJsonObject(0).getJsonObject("delta").getString("role"));
    StringBuilder text = new StringBuilder();
    String finish = null;
    JsonObject streamedUsage = null;
    for (String e : events.subList(0, events.size() - 1)) {
      JsonObject chunk = new JsonObject(e);
      JsonArray choices = chunk.getJsonArray("choices");
      if (choices.isEmpty()) {
        streamedUsage = chunk.getJsonObject("usage");
        continue;
      }
      JsonObject c = choices.getJsonObject(0);
      text.append(c.getJsonObject("delta").getString("content", ""));
      if (c.getString("finish_reason") != null) {
        finish = c.getString("finish_reason");
      }
    }
    assertEquals(content, text.toString());
    assertEquals(choice.getString("finish_reason"), finish);
    assertEquals(usage, streamedUsage);
  }

  @Test
  void tgiGenerateWithDetailsAndItsStreamMatchFmaasGreedy() {
    GenerationResponse reference = generate(fmaas, PROMPT, greedy(12, 0));
    JsonObject body =
        new JsonObject()
            .put("inputs", PROMPT)
            .put("parameters", new JsonObject().put("max_new_tokens", 12).put("details", true));
    HttpResponse<String> r = post(gateway, "/generate", body, null);
    assertEquals(200, r.statusCode(), r.body());
    JsonObject o = new JsonObject(r.body());
    assertEquals(reference.getText(), o.getString("generated_text"));
    JsonObject details = o.getJsonObject("details");
    assertEquals(reference.getGeneratedTokenCount(), details.getInteger("generated_tokens"));
    assertEquals(
        details.getInteger("generated_tokens"), details.getJsonArray("tokens").size(), r.body());
    assertEquals(
        reference.getStopReason() == StopReason.MAX_TOKENS ? "length" : "eos_token",
        details.getString("finish_reason"));

    HttpResponse<String> s = post(gateway, "/generate_stream", body, null);
    assertEquals(200, s.statusCode(), s.body());
    List<String> events = sseDataAfter(s.body(), "data:");
    StringBuilder text = new StringBuilder();
    for (String e : events) {
      JsonObject event = new JsonObject(e);
      text.append(event.getJsonObject("token").getString("text"));
    }
    JsonObject last = new JsonObject(events.getLast());
    assertEquals(reference.getText(), last.getString("generated_text"));
    assertEquals(reference.getText(), text.toString());
    assertEquals(
        reference.getGeneratedTokenCount(),
        last.getJsonObject("details").getInteger("generated_tokens"));
    for (String e : events.subList(0, events.size() - 1)) {
      assertEquals(null, new JsonObject(e).getValue("generated_text"), "only the last event");
    }
  }

  @Test
  void tokenizeInfoModelInfoAndHealthDescribeTheTinyModel() {
    String text = "import numpy as np\nprint(np.arange(10))";
    int[] ids = tokenizer.encode(text);

    HttpResponse<String> tgi =
        post(gateway, "/tokenize", new JsonObject().put("inputs", text), null);
    assertEquals(200, tgi.statusCode(), tgi.body());
    JsonArray tokens = new JsonArray(tgi.body());
    assertEquals(ids.length, tokens.size());
    StringBuilder joined = new StringBuilder();
    for (int i = 0; i < ids.length; i++) {
      assertEquals(ids[i], tokens.getJsonObject(i).getInteger("id"));
      joined.append(tokens.getJsonObject(i).getString("text"));
    }
    assertEquals(text, joined.toString(), "the token texts are the input's slices, in order");

    BatchedTokenizeResponse t =
        fmaas
            .withDeadlineAfter(30, TimeUnit.SECONDS)
            .tokenize(
                BatchedTokenizeRequest.newBuilder()
                    .setModelId(MODEL)
                    .addRequests(TokenizeRequest.newBuilder().setText(text))
                    .addRequests(TokenizeRequest.newBuilder().setText(PROMPT))
                    .setReturnTokens(true)
                    .build());
    assertEquals(2, t.getResponsesCount());
    assertEquals(ids.length, t.getResponses(0).getTokenCount());
    assertEquals(ids.length, t.getResponses(0).getTokensCount());
    assertEquals(tokenizer.encode(PROMPT).length, t.getResponses(1).getTokenCount());

    ModelInfoResponse info =
        fmaas
            .withDeadlineAfter(30, TimeUnit.SECONDS)
            .modelInfo(ModelInfoRequest.newBuilder().setModelId(MODEL).build());
    assertEquals(ModelInfoResponse.ModelKind.DECODER_ONLY, info.getModelKind());
    assertEquals(N_POSITIONS, info.getMaxSequenceLength());

    HttpResponse<String> tgiInfo = get(gateway, "/info", null);
    assertEquals(200, tgiInfo.statusCode(), tgiInfo.body());
    JsonObject i = new JsonObject(tgiInfo.body());
    assertEquals(MODEL, i.getString("model_id"));
    assertEquals(N_POSITIONS, i.getInteger("max_total_tokens"));

    assertEquals(200, get(gateway, "/health", null).statusCode());
    HealthGrpc.HealthBlockingStub health =
        HealthGrpc.newBlockingStub(channel(gateway)).withDeadlineAfter(30, TimeUnit.SECONDS);
    assertEquals(
        HealthCheckResponse.ServingStatus.SERVING,
        health.check(HealthCheckRequest.getDefaultInstance()).getStatus());
    assertEquals(
        HealthCheckResponse.ServingStatus.SERVING,
        health
            .check(
                HealthCheckRequest.newBuilder()
                    .setService(GenerationServiceGrpc.SERVICE_NAME)
                    .build())
            .getStatus());
  }

  // ---- 3. routing -----------------------------------------------------------------------------

  @Test
  void distinctPromptsSpreadOverBothWorkers() throws Exception {
    long[] before = perWorker(s -> s.tokensScheduledTotal());
    long requestsBefore = workerRequestsTotal();
    for (int i = 0; i < 12; i++) {
      GenerationResponse r =
          generate(fmaas, "def function_" + i + "(x):\n    return x * " + i, greedy(4, 4));
      assertEquals(4, r.getGeneratedTokenCount());
    }
    await(
        "both workers' Generate counters hold all 12",
        () -> workerRequestsTotal() == requestsBefore + 12);
    long[] after = perWorker(s -> s.tokensScheduledTotal());
    for (int w = 0; w < 2; w++) {
      assertTrue(
          after[w] > before[w],
          "worker " + (w + 1) + " computed no tokens: before " + before[w] + ", after " + after[w]);
    }
  }

  @Test
  void promptsSharingALongPrefixAllLandOnOneWorkerAndHitItsPrefixCache() throws Exception {
    StringBuilder head = new StringBuilder("# shared module header\n");
    for (int i = 0; head.length() < 320; i++) {
      head.append("import module_").append(i).append(" as m").append(i).append('\n');
    }
    long[] computedBefore = perWorker(s -> s.tokensScheduledTotal());
    long[] hitsBefore = perWorker(s -> s.prefixCacheHitTokensTotal());
    long[] requestsBefore = {workerRequests(0), workerRequests(1)};
    int n = 6;
    for (int i = 0; i < n; i++) {
      generate(fmaas, head + "def tail_" + i + "():\n    return " + i, greedy(4, 4));
    }
    await(
        "the workers counted all " + n + " calls",
        () -> workerRequests(0) + workerRequests(1) == requestsBefore[0] + requestsBefore[1] + n);
    long[] served = {workerRequests(0) - requestsBefore[0], workerRequests(1) - requestsBefore[1]};
    int target = served[0] == n ? 0 : 1;
    assertEquals(n, served[target], "one worker served all: " + served[0] + " / " + served[1]);
    assertEquals(0, served[1 - target]);
    assertEquals(computedBefore[1 - target], perWorker(s -> s.tokensScheduledTotal())[1 - target]);
    long hits = perWorker(s -> s.prefixCacheHitTokensTotal())[target] - hitsBefore[target];
    int headBlocks = tokenizer.encode(head.toString()).length / 16;
    assertTrue(headBlocks >= 4, "the shared head spans several KV blocks: " + headBlocks);
    assertTrue(
        hits >= (long) (n - 1) * (headBlocks - 1) * 16,
        "the later prompts found the head's blocks cached: " + hits + " hit tokens");
  }

  // ---- 4. cancellation frees KV ---------------------------------------------------------------

  @Test
  void cancellingStreamsAbortsThemOnTheirWorkersAndFreesTheKvBlocks() throws Exception {
    double cancelledBefore = workerOutcomes("cancelled");
    List<StreamProbe> probes = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      probes.add(longStream(gateway, "# task " + i + "\nclass Worker" + i + ":\n", false));
    }
    try {
      for (StreamProbe p : probes) {
        assertTrue(p.firstToken.await(30, TimeUnit.SECONDS), "a token arrived");
      }
      await(
          "the streams hold KV blocks on the workers",
          () -> sum(perWorker(s -> s.kvBlocksUsed())) > 0 && sum(perWorker(s -> s.running())) > 0);
    } finally {
      probes.forEach(StreamProbe::cancel);
    }
    for (StreamProbe p : probes) {
      assertEquals(Status.Code.CANCELLED, p.done.get(30, TimeUnit.SECONDS).getCode());
    }
    await(
        "both workers are idle with no KV blocks held",
        () ->
            sum(perWorker(s -> s.kvBlocksUsed())) == 0
                && sum(perWorker(s -> s.running())) == 0
                && sum(perWorker(s -> s.waiting())) == 0);
    await(
        "the workers counted 4 cancelled calls",
        () -> workerOutcomes("cancelled") == cancelledBefore + 4);
    for (StreamProbe p : probes) {
      assertTrue(p.tokens.get() < 400, "cancelled, not finished: " + p.tokens.get() + " tokens");
    }
  }

  // ---- 5. admission control -------------------------------------------------------------------

  @Test
  void aSaturatedGatewayAnswers429AndResourceExhaustedInsteadOfQueueing() throws Exception {
    // NOTE: a 1 KiB HTTP/2 window, one requested message and bulky messages (five alternatives per
    // token) make the held stream a slow reader: the gateway stops reading it from the worker
    // before its end arrives, so it stays in flight until cancelled, however fast the workers are.
    ManagedChannel slow =
        track(
            NettyChannelBuilder.forAddress("127.0.0.1", limitedGateway.grpcPort())
                .usePlaintext()
                .flowControlWindow(1024)
                .build());
    StreamProbe held = longStream(slow, "# held\nclass Held:\n", true);
    assertTrue(held.first.await(30, TimeUnit.SECONDS), "the held stream started");
    try {
      assertFalse(held.done.isDone(), "still in flight");

      JsonObject completion =
          new JsonObject().put("model", MODEL).put("prompt", PROMPT).put("max_tokens", 4);
      HttpResponse<String> openAi = post(limitedGateway, "/v1/completions", completion, null);
      assertEquals(429, openAi.statusCode(), openAi.body());
      assertEquals("1", openAi.headers().firstValue("retry-after").orElse(null));
      assertNotNull(new JsonObject(openAi.body()).getJsonObject("error"), openAi.body());

      HttpResponse<String> tgi =
          post(
              limitedGateway,
              "/generate",
              new JsonObject()
                  .put("inputs", PROMPT)
                  .put("parameters", new JsonObject().put("max_new_tokens", 4)),
              null);
      assertEquals(429, tgi.statusCode(), tgi.body());
      assertEquals("1", tgi.headers().firstValue("retry-after").orElse(null));
      assertEquals("overloaded", new JsonObject(tgi.body()).getString("error_type"));

      StatusRuntimeException grpc =
          assertThrows(
              StatusRuntimeException.class,
              () ->
                  generate(
                      GenerationServiceGrpc.newBlockingStub(channel(limitedGateway)),
                      PROMPT,
                      greedy(4, 4)));
      assertEquals(Status.Code.RESOURCE_EXHAUSTED, grpc.getStatus().getCode());
      assertFalse(held.done.isDone(), "the held stream was in flight all along");
    } finally {
      held.cancel();
    }
    assertEquals(Status.Code.CANCELLED, held.done.get(30, TimeUnit.SECONDS).getCode());
    await(
        "the freed slot admits a request again",
        () ->
            post(
                        limitedGateway,
                        "/v1/completions",
                        new JsonObject()
                            .put("model", MODEL)
                            .put("prompt", PROMPT)
                            .put("max_tokens", 2),
                        null)
                    .statusCode()
                == 200);
  }

  // ---- 6. metrics -----------------------------------------------------------------------------

  @Test
  void gatewayAndWorkerMetricsExposeTheirNamesAndMove() throws Exception {
    String before = get(gateway, "/metrics", null).body();
    assertEquals(2.0, value(before, "starserve_gateway_workers", "state=\"ready\""), before);
    double requests =
        value(
            before,
            "starserve_gateway_requests_total",
            "api=\"openai_completions\"",
            "outcome=\"success\"");
    double ttft =
        value(
            before,
            "starserve_gateway_time_to_first_token_seconds_count",
            "api=\"openai_completions\"");
    long workerRequestsBefore = workerRequestsTotal();

    HttpResponse<String> r =
        post(
            gateway,
            "/v1/completions",
            new JsonObject().put("model", MODEL).put("prompt", PROMPT).put("max_tokens", 3),
            null);
    assertEquals(200, r.statusCode(), r.body());

    String after = get(gateway, "/metrics", null).body();
    assertEquals(
        requests + 1,
        value(
            after,
            "starserve_gateway_requests_total",
            "api=\"openai_completions\"",
            "outcome=\"success\""),
        after);
    assertEquals(
        ttft + 1,
        value(
            after,
            "starserve_gateway_time_to_first_token_seconds_count",
            "api=\"openai_completions\""));
    await("a worker counted the call", () -> workerRequestsTotal() == workerRequestsBefore + 1);

    StreamProbe stream = longStream(gateway, "# metrics\nclass Busy:\n", false);
    try {
      assertTrue(stream.firstToken.await(30, TimeUnit.SECONDS), "a token arrived");
      await(
          "a worker's /metrics shows the running sequence and its KV blocks",
          () ->
              workerMetricSum("starserve_worker_running_sequences") >= 1
                  && workerMetricSum("starserve_worker_kv_blocks_used") >= 1);
    } finally {
      stream.cancel();
    }
    await(
        "the workers' /metrics fall back to zero",
        () ->
            workerMetricSum("starserve_worker_running_sequences") == 0
                && workerMetricSum("starserve_worker_kv_blocks_used") == 0);
  }

  // ---- 7. API keys ----------------------------------------------------------------------------

  @Test
  void apiKeysGuardEveryGenerationButHealthAndMetrics() {
    JsonObject completion =
        new JsonObject().put("model", MODEL).put("prompt", PROMPT).put("max_tokens", 2);
    HttpResponse<String> none = post(keyedGateway, "/v1/completions", completion, null);
    assertEquals(401, none.statusCode(), none.body());
    assertNotNull(new JsonObject(none.body()).getJsonObject("error"), none.body());
    assertEquals(401, post(keyedGateway, "/v1/completions", completion, "k2").statusCode());
    assertEquals(
        401,
        post(keyedGateway, "/generate", new JsonObject().put("inputs", PROMPT), null).statusCode());
    HttpResponse<String> ok = post(keyedGateway, "/v1/completions", completion, "k1");
    assertEquals(200, ok.statusCode(), ok.body());
    assertEquals(200, get(keyedGateway, "/health", null).statusCode());
    assertEquals(200, get(keyedGateway, "/metrics", null).statusCode());

    GenerationServiceGrpc.GenerationServiceBlockingStub bare =
        GenerationServiceGrpc.newBlockingStub(channel(keyedGateway));
    StatusRuntimeException e =
        assertThrows(StatusRuntimeException.class, () -> generate(bare, PROMPT, greedy(2, 2)));
    assertEquals(Status.Code.UNAUTHENTICATED, e.getStatus().getCode());
    Metadata key = new Metadata();
    key.put(AUTHORIZATION, "Bearer k1");
    GenerationResponse r =
        generate(
            bare.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(key)),
            PROMPT,
            greedy(2, 2));
    assertEquals(2, r.getGeneratedTokenCount());
    assertEquals(
        HealthCheckResponse.ServingStatus.SERVING,
        HealthGrpc.newBlockingStub(channel(keyedGateway))
            .withDeadlineAfter(30, TimeUnit.SECONDS)
            .check(HealthCheckRequest.getDefaultInstance())
            .getStatus());
  }

  // ---- helpers --------------------------------------------------------------------------------

  private static Parameters greedy(int max, int min) {
    return Parameters.newBuilder()
        .setMethod(DecodingMethod.GREEDY)
        .setStopping(StoppingCriteria.newBuilder().setMaxNewTokens(max).setMinNewTokens(min))
        .build();
  }

  private static GenerationResponse generate(
      GenerationServiceGrpc.GenerationServiceBlockingStub stub, String prompt, Parameters params) {
    return stub.withDeadlineAfter(30, TimeUnit.SECONDS)
        .generate(
            BatchedGenerationRequest.newBuilder()
                .setModelId(MODEL)
                .addRequests(GenerationRequest.newBuilder().setText(prompt))
                .setParams(params)
                .build())
        .getResponses(0);
  }

  private static String finishReason(GenerationResponse r) {
    return r.getStopReason() == StopReason.MAX_TOKENS ? "length" : "stop";
  }

  private static JsonObject usage(int prompt, int completion) {
    return new JsonObject()
        .put("prompt_tokens", prompt)
        .put("completion_tokens", completion)
        .put("total_tokens", prompt + completion);
  }

  /** One fmaas GenerateStream of 400 tokens (it cannot end early) that the test cancels. */
  private static StreamProbe longStream(ClusterGateway g, String prompt, boolean slowReader) {
    return longStream(channel(g), prompt, slowReader);
  }

  private static StreamProbe longStream(ManagedChannel ch, String prompt, boolean slowReader) {
    StreamProbe probe = new StreamProbe(slowReader);
    GenerationServiceGrpc.newStub(ch)
        .withDeadlineAfter(60, TimeUnit.SECONDS)
        .generateStream(
            SingleGenerationRequest.newBuilder()
                .setModelId(MODEL)
                .setRequest(GenerationRequest.newBuilder().setText(prompt))
                .setParams(
                    slowReader
                        ? greedy(400, 400).toBuilder()
                            .setResponse(
                                ResponseOptions.newBuilder()
                                    .setGeneratedTokens(true)
                                    .setTopNTokens(5))
                            .build()
                        : greedy(400, 400))
                .build(),
            probe);
    return probe;
  }

  /**
   * Records a stream's progress; a {@code slowReader} asks for one message and never more (and for
   * the top tokens, so that the messages are big).
   */
  private static final class StreamProbe
      implements ClientResponseObserver<SingleGenerationRequest, GenerationResponse> {
    final CountDownLatch first = new CountDownLatch(1);
    final CountDownLatch firstToken = new CountDownLatch(1);
    final AtomicInteger tokens = new AtomicInteger();
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

    void cancel() {
      call.cancel("the test cancels", null);
    }
  }

  private static long[] perWorker(ToLongFunction<EngineStats> f) {
    return new long[] {
      f.applyAsLong(workers.get(0).engine().stats()), f.applyAsLong(workers.get(1).engine().stats())
    };
  }

  private static long sum(long[] values) {
    long s = 0;
    for (long v : values) {
      s += v;
    }
    return s;
  }

  /** Worker {@code w}'s ended Generate calls, all outcomes, from its /metrics. */
  private static long workerRequests(int w) {
    return (long) value(workerMetrics(w), "starserve_worker_requests_total");
  }

  private static long workerRequestsTotal() {
    return workerRequests(0) + workerRequests(1);
  }

  private static double workerOutcomes(String outcome) {
    double s = 0;
    for (int w = 0; w < 2; w++) {
      s +=
          value(workerMetrics(w), "starserve_worker_requests_total", "outcome=\"" + outcome + "\"");
    }
    return s;
  }

  private static double workerMetricSum(String name) {
    return value(workerMetrics(0), name) + value(workerMetrics(1), name);
  }

  /** A worker's Prometheus text, fetched as a scraper does: GET /metrics on its gRPC port. */
  private static String workerMetrics(int w) {
    HttpResponse<String> r =
        send(
            HttpRequest.newBuilder(
                    URI.create("http://127.0.0.1:" + workers.get(w).server().port() + "/metrics"))
                .timeout(WAIT)
                .GET()
                .build());
    assertEquals(200, r.statusCode(), r.body());
    return r.body();
  }

  /**
   * The sum of the samples of {@code name} (exactly that name, no suffix) whose labels include
   * every one of {@code labels}; fails when there is none.
   */
  private static double value(String text, String name, String... labels) {
    double sum = 0;
    boolean found = false;
    for (String line : text.split("\n")) {
      String series;
      if (line.startsWith(name + "{")) {
        series = line.substring(0, line.indexOf('}') + 1);
      } else if (line.startsWith(name + " ")) {
        series = name;
      } else {
        continue;
      }
      boolean all = true;
      for (String l : labels) {
        all &= series.contains(l);
      }
      if (all) {
        found = true;
        sum += Double.parseDouble(line.substring(series.length()).trim().split(" ")[0]);
      }
    }
    if (!found && labels.length == 0) {
      throw new AssertionError("no " + name + " in\n" + text);
    }
    return sum;
  }

  /**
   * The payloads of an SSE body, checking the framing: every event is a single {@code prefix} line
   * followed by a blank line.
   */
  private static List<String> sseDataAfter(String body, String prefix) {
    String[] events = body.split("\n\n", -1);
    assertEquals("", events[events.length - 1], "the stream ends with a blank line: " + body);
    List<String> out = new ArrayList<>();
    for (int i = 0; i < events.length - 1; i++) {
      assertTrue(
          events[i].startsWith(prefix) && !events[i].contains("\n"),
          "not a single '" + prefix + "' line: " + events[i]);
      out.add(events[i].substring(prefix.length()));
    }
    assertFalse(out.isEmpty(), "no events");
    return out;
  }

  private static List<String> sseData(String body) {
    return sseDataAfter(body, "data: ");
  }

  /** One plaintext grpc-netty-shaded channel per gateway, shut down after all tests. */
  private static synchronized ManagedChannel channel(ClusterGateway g) {
    return gatewayChannels.computeIfAbsent(
        g,
        k ->
            track(
                NettyChannelBuilder.forAddress("127.0.0.1", k.grpcPort()).usePlaintext().build()));
  }

  private static synchronized ManagedChannel track(ManagedChannel c) {
    channels.add(c);
    return c;
  }

  private static HttpResponse<String> post(
      ClusterGateway g, String path, JsonObject body, String key) {
    HttpRequest.Builder b =
        request(g, path, key)
            .header("content-type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body.encode()));
    return send(b.build());
  }

  private static HttpResponse<String> get(ClusterGateway g, String path, String key) {
    return send(request(g, path, key).GET().build());
  }

  private static HttpRequest.Builder request(ClusterGateway g, String path, String key) {
    HttpRequest.Builder b =
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + g.httpPort() + path)).timeout(WAIT);
    if (key != null) {
      b.header("authorization", "Bearer " + key);
    }
    return b;
  }

  private static HttpResponse<String> send(HttpRequest request) {
    try {
      return http.send(request, HttpResponse.BodyHandlers.ofString());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    } catch (java.io.IOException e) {
      throw new IllegalStateException(request.uri() + ": " + e.getMessage(), e);
    }
  }

  /** Polls {@code condition} every 10 ms until it holds; fails after {@link #WAIT}. */
  private static void await(String what, BooleanSupplier condition) throws InterruptedException {
    long end = System.nanoTime() + WAIT.toNanos();
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > end) {
        throw new AssertionError(
            "timed out after " + WAIT.toSeconds() + " s waiting until " + what);
      }
      Thread.sleep(10);
    }
  }

  private static <T> T get(Future<T> f) throws Exception {
    return f.toCompletionStage().toCompletableFuture().get(WAIT.toSeconds(), TimeUnit.SECONDS);
  }

  private interface Step {
    void run() throws Exception;
  }

  private static void quietly(Step step) {
    try {
      step.run();
    } catch (Exception e) {
      System.err.println("cleanup step failed: " + e);
    }
  }
}
