package dev.starserve.cluster;

import static dev.starserve.cluster.InProcessCluster.API_KEY;
import static dev.starserve.cluster.InProcessCluster.MODEL;
import static dev.starserve.cluster.InProcessCluster.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.gateway.ClusterGateway;
import dev.starserve.proto.fmaas.BatchedGenerationRequest;
import dev.starserve.proto.fmaas.BatchedTokenizeRequest;
import dev.starserve.proto.fmaas.BatchedTokenizeResponse;
import dev.starserve.proto.fmaas.DecodingMethod;
import dev.starserve.proto.fmaas.GenerationRequest;
import dev.starserve.proto.fmaas.GenerationResponse;
import dev.starserve.proto.fmaas.GenerationServiceGrpc;
import dev.starserve.proto.fmaas.GenerationServiceGrpc.GenerationServiceBlockingStub;
import dev.starserve.proto.fmaas.ModelInfoRequest;
import dev.starserve.proto.fmaas.ModelInfoResponse;
import dev.starserve.proto.fmaas.Parameters;
import dev.starserve.proto.fmaas.ResponseOptions;
import dev.starserve.proto.fmaas.SingleGenerationRequest;
import dev.starserve.proto.fmaas.StopReason;
import dev.starserve.proto.fmaas.StoppingCriteria;
import dev.starserve.proto.fmaas.TokenizeRequest;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.MetadataUtils;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The whole product in one JVM ({@link InProcessCluster}: a gateway and two workers of the tiny
 * random-weight model on three Hazelcast members, plus a saturable and a keyed gateway), called
 * through real clients: the generated grpc-java {@code fmaas} stub over grpc-netty-shaded and
 * {@link java.net.http.HttpClient}.
 *
 * <p>The references are independent of the path under test: the model's tokenizer loaded here
 * (token counts), the unary fmaas {@code Generate} (the greedy text every other API must
 * reproduce), and the workers' own engine stats and {@code /metrics} (who ran what, KV blocks held,
 * calls cancelled).
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class ClusterIntegrationTest {
  private static final int N_POSITIONS = 512; // the tiny shape's context
  private static final int LONG = 400; // tokens of a stream the test cancels (prompt + LONG < 512)
  private static final String PROMPT = "def fibonacci(n):\n    ";
  private static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  @TempDir static Path tmp;

  private static InProcessCluster cluster;
  private static GenerationServiceBlockingStub fmaas;

  @BeforeAll
  @Timeout(value = 180, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
  static void startCluster() throws Exception {
    cluster = InProcessCluster.start(tmp);
    fmaas = GenerationServiceGrpc.newBlockingStub(cluster.channel(cluster.gateway));
  }

  @AfterAll
  @Timeout(value = 120, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
  static void stopCluster() {
    if (cluster != null) {
      cluster.close();
    }
  }

  // ---- fmaas: streaming = unary ---------------------------------------------------------------

  @Test
  void fmaasGenerateStreamPiecesConcatenateToTheUnaryGreedyTextWithTheSameCounts() {
    Parameters params = greedy(16, 16); // min = max: EOS cannot cut it short
    GenerationResponse unary = generate(fmaas, PROMPT, params);
    int promptTokens = tokens(PROMPT);
    assertEquals(16, unary.getGeneratedTokenCount());
    assertEquals(StopReason.MAX_TOKENS, unary.getStopReason());
    assertEquals(promptTokens, unary.getInputTokenCount());
    assertFalse(unary.getText().isEmpty(), "16 greedy tokens decode to some text");

    List<GenerationResponse> pieces = new ArrayList<>();
    fmaas
        .withDeadlineAfter(30, TimeUnit.SECONDS)
        .generateStream(single(PROMPT, params))
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

  // ---- the HTTP APIs, Tokenize, ModelInfo, health ---------------------------------------------

  @Test
  void openAiCompletionStreamedAndNotMatchFmaasGreedyWithSseFramingAndRightUsage() {
    GenerationResponse reference = generate(fmaas, PROMPT, greedy(12, 0));
    JsonObject body =
        new JsonObject()
            .put("model", MODEL)
            .put("prompt", PROMPT)
            .put("max_tokens", 12)
            .put("temperature", 0);
    JsonObject usage = usage(tokens(PROMPT), reference.getGeneratedTokenCount());

    HttpResponse<String> plain = cluster.post(cluster.gateway, "/v1/completions", body, null);
    assertEquals(200, plain.statusCode(), plain.body());
    JsonObject o = new JsonObject(plain.body());
    assertEquals("text_completion", o.getString("object"));
    JsonObject choice = o.getJsonArray("choices").getJsonObject(0);
    assertEquals(reference.getText(), choice.getString("text"));
    assertEquals(finishReason(reference), choice.getString("finish_reason"));
    assertEquals(usage, o.getJsonObject("usage"));

    HttpResponse<String> streamed =
        cluster.post(cluster.gateway, "/v1/completions", streaming(body), null);
    assertEquals(200, streamed.statusCode(), streamed.body());
    assertTrue(
        streamed.headers().firstValue("content-type").orElse("").startsWith("text/event-stream"));
    List<String> events = Wire.sse(streamed.body(), "data: ");
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
    HttpResponse<String> plain = cluster.post(cluster.gateway, "/v1/chat/completions", body, null);
    assertEquals(200, plain.statusCode(), plain.body());
    JsonObject o = new JsonObject(plain.body());
    assertEquals("chat.completion", o.getString("object"));
    JsonObject choice = o.getJsonArray("choices").getJsonObject(0);
    assertEquals("assistant", choice.getJsonObject("message").getString("role"));
    String content = choice.getJsonObject("message").getString("content");
    JsonObject usage = o.getJsonObject("usage");
    int completionTokens = usage.getInteger("completion_tokens");
    assertTrue(completionTokens >= 1 && completionTokens <= 10, usage.encode());
    assertEquals(
        "length".equals(choice.getString("finish_reason")), completionTokens == 10, usage.encode());
    assertTrue(
        usage.getInteger("prompt_tokens") > tokens("Write a sort."),
        "the rendered chat holds more than the message: " + usage.encode());
    assertEquals(
        usage.getInteger("prompt_tokens") + completionTokens, usage.getInteger("total_tokens"));

    HttpResponse<String> streamed =
        cluster.post(cluster.gateway, "/v1/chat/completions", streaming(body), null);
    assertEquals(200, streamed.statusCode(), streamed.body());
    List<String> events = Wire.sse(streamed.body(), "data: ");
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
      JsonArray choices = new JsonObject(e).getJsonArray("choices");
      if (choices.isEmpty()) {
        streamedUsage = new JsonObject(e).getJsonObject("usage");
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
    HttpResponse<String> r = cluster.post(cluster.gateway, "/generate", body, null);
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

    HttpResponse<String> s = cluster.post(cluster.gateway, "/generate_stream", body, null);
    assertEquals(200, s.statusCode(), s.body());
    List<String> events = Wire.sse(s.body(), "data:");
    StringBuilder text = new StringBuilder();
    for (String e : events) {
      text.append(new JsonObject(e).getJsonObject("token").getString("text"));
    }
    JsonObject last = new JsonObject(events.getLast());
    assertEquals(reference.getText(), last.getString("generated_text"));
    assertEquals(reference.getText(), text.toString());
    assertEquals(
        reference.getGeneratedTokenCount(),
        last.getJsonObject("details").getInteger("generated_tokens"));
    for (String e : events.subList(0, events.size() - 1)) {
      assertNull(new JsonObject(e).getValue("generated_text"), "only the last event has it");
    }
  }

  @Test
  void tokenizeInfoModelInfoAndHealthDescribeTheTinyModel() {
    String text = "import numpy as np\nprint(np.arange(10))";
    int[] ids = cluster.tokenizer.encode(text);

    HttpResponse<String> tgi =
        cluster.post(cluster.gateway, "/tokenize", new JsonObject().put("inputs", text), null);
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
    assertEquals(tokens(PROMPT), t.getResponses(1).getTokenCount());

    ModelInfoResponse info =
        fmaas
            .withDeadlineAfter(30, TimeUnit.SECONDS)
            .modelInfo(ModelInfoRequest.newBuilder().setModelId(MODEL).build());
    assertEquals(ModelInfoResponse.ModelKind.DECODER_ONLY, info.getModelKind());
    assertEquals(N_POSITIONS, info.getMaxSequenceLength());

    HttpResponse<String> tgiInfo = cluster.get(cluster.gateway, "/info", null);
    assertEquals(200, tgiInfo.statusCode(), tgiInfo.body());
    JsonObject i = new JsonObject(tgiInfo.body());
    assertEquals(MODEL, i.getString("model_id"));
    assertEquals(N_POSITIONS, i.getInteger("max_total_tokens"));

    assertEquals(200, cluster.get(cluster.gateway, "/health", null).statusCode());
    HealthGrpc.HealthBlockingStub health =
        HealthGrpc.newBlockingStub(cluster.channel(cluster.gateway))
            .withDeadlineAfter(30, TimeUnit.SECONDS);
    assertEquals(
        ServingStatus.SERVING, health.check(HealthCheckRequest.getDefaultInstance()).getStatus());
    assertEquals(
        ServingStatus.SERVING,
        health
            .check(
                HealthCheckRequest.newBuilder()
                    .setService(GenerationServiceGrpc.SERVICE_NAME)
                    .build())
            .getStatus());
  }

  // ---- routing --------------------------------------------------------------------------------

  @Test
  void distinctPromptsSpreadOverBothWorkers() throws Exception {
    cluster.awaitIdle();
    long[] before = {cluster.workerCalls(0, "length"), cluster.workerCalls(1, "length")};
    for (int i = 0; i < 12; i++) {
      GenerationResponse r =
          generate(fmaas, "def function_" + i + "(x):\n    return x * " + i, greedy(4, 4));
      assertEquals(4, r.getGeneratedTokenCount());
    }
    await(
        "the workers counted all 12 calls",
        () -> cluster.workerCallsTotal("length") == before[0] + before[1] + 12);
    for (int w = 0; w < 2; w++) {
      long served = cluster.workerCalls(w, "length") - before[w];
      assertTrue(served >= 1, "worker " + (w + 1) + " served " + served + " of 12");
    }
  }

  @Test
  void promptsSharingALongPrefixStickToOneWorkerEachAndHitItsPrefixCache() throws Exception {
    cluster.awaitIdle();
    int heads = 4;
    int tails = 3;
    String[] head = new String[heads];
    for (int h = 0; h < heads; h++) {
      StringBuilder b = new StringBuilder("# shared module header " + h + "\n");
      for (int i = 0; b.length() < 320; i++) {
        b.append("import package_").append(h).append("_").append(i).append(" as p").append(i);
        b.append('\n');
      }
      head[h] = b.toString();
    }
    int headBlocks = tokens(head[0]) / 16;
    assertTrue(headBlocks >= 4, "the shared head spans several KV blocks: " + headBlocks);
    long[] hitsBefore = cluster.perWorker(s -> s.prefixCacheHitTokensTotal());

    // Interleaved, one at a time: h0 t0, h1 t0, ..., h3 t0, h0 t1, ...
    int[][] servedBy = new int[heads][tails];
    for (int t = 0; t < tails; t++) {
      for (int h = 0; h < heads; h++) {
        servedBy[h][t] = servingWorker(head[h] + "def tail_" + t + "():\n    return " + t);
      }
    }
    Set<Integer> headWorkers = new HashSet<>();
    long[] expectedHits = new long[2];
    for (int h = 0; h < heads; h++) {
      for (int t = 1; t < tails; t++) {
        assertEquals(
            servedBy[h][0],
            servedBy[h][t],
            "prefix " + h + " moved between workers: " + Arrays.toString(servedBy[h]));
      }
      headWorkers.add(servedBy[h][0]);
      expectedHits[servedBy[h][0]] += (long) (tails - 1) * (headBlocks - 1) * 16;
    }
    assertEquals(
        2, headWorkers.size(), "different prefixes go to different workers, not all to one");
    long[] hits = cluster.perWorker(s -> s.prefixCacheHitTokensTotal());
    for (int w = 0; w < 2; w++) {
      assertTrue(
          hits[w] - hitsBefore[w] >= expectedHits[w],
          "worker "
              + (w + 1)
              + " found its prefixes' blocks cached: "
              + (hits[w] - hitsBefore[w])
              + " hit tokens, expected at least "
              + expectedHits[w]);
    }
  }

  /** Sends one short greedy Generate and tells which worker counted it. */
  private static int servingWorker(String prompt) throws InterruptedException {
    long[] before = {cluster.workerCalls(0, "length"), cluster.workerCalls(1, "length")};
    generate(fmaas, prompt, greedy(2, 2));
    await(
        "a worker counted the call",
        () -> cluster.workerCallsTotal("length") == before[0] + before[1] + 1);
    return cluster.workerCalls(0, "length") > before[0] ? 0 : 1;
  }

  // ---- cancellation ---------------------------------------------------------------------------

  @Test
  void cancellingStreamsAbortsThemOnTheirWorkersAndFreesTheKvBlocks() throws Exception {
    long cancelledBefore = cluster.workerCallsTotal("cancelled");
    List<StreamProbe> probes = new ArrayList<>();
    try {
      for (int i = 0; i < 4; i++) {
        probes.add(longStream(cluster.gateway, "# task " + i + "\nclass Worker" + i + ":\n"));
      }
      for (StreamProbe p : probes) {
        assertTrue(p.firstToken.await(30, TimeUnit.SECONDS), "a token arrived");
      }
      await(
          "the streams hold KV blocks on the workers",
          () ->
              sum(cluster.perWorker(s -> s.kvBlocksUsed())) > 0
                  && sum(cluster.perWorker(s -> s.running())) > 0);
    } finally {
      probes.forEach(StreamProbe::cancel);
    }
    for (StreamProbe p : probes) {
      assertEquals(Status.Code.CANCELLED, p.done.get(30, TimeUnit.SECONDS).getCode());
    }
    await(
        "both workers are idle with no KV blocks held",
        () ->
            sum(cluster.perWorker(s -> s.kvBlocksUsed())) == 0
                && sum(cluster.perWorker(s -> s.running())) == 0
                && sum(cluster.perWorker(s -> s.waiting())) == 0);
    await(
        "the workers counted 4 cancelled calls",
        () -> cluster.workerCallsTotal("cancelled") == cancelledBefore + 4);
    for (StreamProbe p : probes) {
      assertTrue(p.tokens.get() < LONG, "cancelled, not finished: " + p.tokens.get() + " tokens");
    }
  }

  @Test
  void aClientDeadlineReachesTheWorkerAndFreesItsKvBlocksWhenItPasses() throws Exception {
    // NOTE: a slow reader takes one message and no more, so the stream cannot end before the
    // deadline however fast the workers are.
    StreamProbe probe = new StreamProbe(true);
    GenerationServiceGrpc.newStub(cluster.channel(cluster.gateway))
        .withDeadlineAfter(1500, TimeUnit.MILLISECONDS)
        .generateStream(single("# deadline\nclass Late:\n", greedy(LONG, LONG)), probe);
    assertEquals(Status.Code.DEADLINE_EXCEEDED, probe.done.get(30, TimeUnit.SECONDS).getCode());
    await(
        "both workers are idle with no KV blocks held",
        () ->
            sum(cluster.perWorker(s -> s.kvBlocksUsed())) == 0
                && sum(cluster.perWorker(s -> s.running())) == 0
                && sum(cluster.perWorker(s -> s.waiting())) == 0);
  }

  // ---- admission control ----------------------------------------------------------------------

  @Test
  void aSaturatedGatewayAnswers429AndResourceExhaustedInsteadOfQueueing() throws Exception {
    ClusterGateway limited = cluster.limitedGateway; // admits 1 sequence per model
    // NOTE: a 1 KiB HTTP/2 window, one requested message and bulky messages (five alternatives per
    // token) make the held stream a slow reader: the gateway stops reading it from the worker
    // before its end arrives, so it stays in flight until cancelled, however fast the workers are.
    ManagedChannel slow =
        cluster.track(
            NettyChannelBuilder.forAddress("127.0.0.1", limited.grpcPort())
                .usePlaintext()
                .flowControlWindow(1024)
                .build());
    StreamProbe held = new StreamProbe(true);
    Parameters bulky =
        greedy(LONG, LONG).toBuilder()
            .setResponse(ResponseOptions.newBuilder().setGeneratedTokens(true).setTopNTokens(5))
            .build();
    GenerationServiceGrpc.newStub(slow)
        .withDeadlineAfter(60, TimeUnit.SECONDS)
        .generateStream(single("# held\nclass Held:\n", bulky), held);
    try {
      assertTrue(held.first.await(30, TimeUnit.SECONDS), "the held stream started");
      assertFalse(held.done.isDone(), "still in flight");

      JsonObject completion =
          new JsonObject().put("model", MODEL).put("prompt", PROMPT).put("max_tokens", 4);
      HttpResponse<String> openAi = cluster.post(limited, "/v1/completions", completion, null);
      assertEquals(429, openAi.statusCode(), openAi.body());
      assertEquals("1", openAi.headers().firstValue("retry-after").orElse(null));
      assertNotNull(new JsonObject(openAi.body()).getJsonObject("error"), openAi.body());

      HttpResponse<String> tgi =
          cluster.post(
              limited,
              "/generate",
              new JsonObject()
                  .put("inputs", PROMPT)
                  .put("parameters", new JsonObject().put("max_new_tokens", 4)),
              null);
      assertEquals(429, tgi.statusCode(), tgi.body());
      assertEquals("1", tgi.headers().firstValue("retry-after").orElse(null));
      assertEquals("overloaded", new JsonObject(tgi.body()).getString("error_type"));

      GenerationServiceBlockingStub grpc =
          GenerationServiceGrpc.newBlockingStub(cluster.channel(limited));
      StatusRuntimeException e =
          assertThrows(StatusRuntimeException.class, () -> generate(grpc, PROMPT, greedy(4, 4)));
      assertEquals(Status.Code.RESOURCE_EXHAUSTED, e.getStatus().getCode());
      assertFalse(held.done.isDone(), "the held stream was in flight all along");
    } finally {
      held.cancel();
    }
    assertEquals(Status.Code.CANCELLED, held.done.get(30, TimeUnit.SECONDS).getCode());
    JsonObject small =
        new JsonObject().put("model", MODEL).put("prompt", PROMPT).put("max_tokens", 2);
    await(
        "the freed slot admits a request again",
        () -> cluster.post(limited, "/v1/completions", small, null).statusCode() == 200);
  }

  // ---- metrics --------------------------------------------------------------------------------

  @Test
  void gatewayAndWorkerMetricsExposeTheirNamesAndMove() throws Exception {
    String before = cluster.get(cluster.gateway, "/metrics", null).body();
    assertEquals(2.0, Wire.metric(before, "starserve_gateway_workers", "state=\"ready\""), before);
    String api = "api=\"openai_completions\"";
    double requests =
        Wire.metricOrZero(before, "starserve_gateway_requests_total", api, "outcome=\"success\"");
    double ttft =
        Wire.metricOrZero(before, "starserve_gateway_time_to_first_token_seconds_count", api);
    long workerCallsBefore = cluster.workerCallsTotal(null);

    HttpResponse<String> r =
        cluster.post(
            cluster.gateway,
            "/v1/completions",
            new JsonObject().put("model", MODEL).put("prompt", PROMPT).put("max_tokens", 3),
            null);
    assertEquals(200, r.statusCode(), r.body());

    String after = cluster.get(cluster.gateway, "/metrics", null).body();
    assertEquals(
        requests + 1,
        Wire.metric(after, "starserve_gateway_requests_total", api, "outcome=\"success\""),
        after);
    assertEquals(
        ttft + 1, Wire.metric(after, "starserve_gateway_time_to_first_token_seconds_count", api));
    await(
        "a worker's /metrics counted the call",
        () -> cluster.workerCallsTotal(null) == workerCallsBefore + 1);

    // NOTE: a stream of the tiny model lasts a few hundred ms, so a busy machine can stall this
    // thread past its end; the check then tries a new stream (three in all) rather than wait for a
    // state that has passed.
    boolean seen = false;
    for (int attempt = 0; attempt < 3 && !seen; attempt++) {
      StreamProbe stream = longStream(cluster.gateway, "# metrics " + attempt + "\nclass Busy:\n");
      try {
        assertTrue(stream.firstToken.await(30, TimeUnit.SECONDS), "a token arrived");
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!seen && !stream.done.isDone() && System.nanoTime() < end) {
          seen =
              cluster.workerMetricSum("starserve_worker_running_sequences") >= 1
                  && cluster.workerMetricSum("starserve_worker_kv_blocks_used") >= 1;
          Thread.sleep(5);
        }
      } finally {
        stream.cancel();
      }
    }
    assertTrue(seen, "a worker's /metrics showed the running sequence and its KV blocks");
    await(
        "the workers' /metrics fall back to zero",
        () ->
            cluster.workerMetricSum("starserve_worker_running_sequences") == 0
                && cluster.workerMetricSum("starserve_worker_kv_blocks_used") == 0);
  }

  // ---- API keys -------------------------------------------------------------------------------

  @Test
  void apiKeysGuardEveryGenerationButHealthAndMetrics() {
    ClusterGateway keyed = cluster.keyedGateway;
    JsonObject completion =
        new JsonObject().put("model", MODEL).put("prompt", PROMPT).put("max_tokens", 2);
    HttpResponse<String> none = cluster.post(keyed, "/v1/completions", completion, null);
    assertEquals(401, none.statusCode(), none.body());
    assertNotNull(new JsonObject(none.body()).getJsonObject("error"), none.body());
    assertEquals(401, cluster.post(keyed, "/v1/completions", completion, "k2").statusCode());
    assertEquals(
        401,
        cluster
            .post(keyed, "/generate", new JsonObject().put("inputs", PROMPT), null)
            .statusCode());
    HttpResponse<String> ok = cluster.post(keyed, "/v1/completions", completion, API_KEY);
    assertEquals(200, ok.statusCode(), ok.body());
    assertEquals(200, cluster.get(keyed, "/health", null).statusCode());
    assertEquals(200, cluster.get(keyed, "/metrics", null).statusCode());

    GenerationServiceBlockingStub bare =
        GenerationServiceGrpc.newBlockingStub(cluster.channel(keyed));
    StatusRuntimeException e =
        assertThrows(StatusRuntimeException.class, () -> generate(bare, PROMPT, greedy(2, 2)));
    assertEquals(Status.Code.UNAUTHENTICATED, e.getStatus().getCode());
    Metadata key = new Metadata();
    key.put(AUTHORIZATION, "Bearer " + API_KEY);
    GenerationResponse r =
        generate(
            bare.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(key)),
            PROMPT,
            greedy(2, 2));
    assertEquals(2, r.getGeneratedTokenCount());
    assertEquals(
        ServingStatus.SERVING,
        HealthGrpc.newBlockingStub(cluster.channel(keyed))
            .withDeadlineAfter(30, TimeUnit.SECONDS)
            .check(HealthCheckRequest.getDefaultInstance())
            .getStatus());
  }

  // ---- helpers --------------------------------------------------------------------------------

  private static int tokens(String text) {
    return cluster.tokenizer.encode(text).length;
  }

  private static Parameters greedy(int max, int min) {
    return Parameters.newBuilder()
        .setMethod(DecodingMethod.GREEDY)
        .setStopping(StoppingCriteria.newBuilder().setMaxNewTokens(max).setMinNewTokens(min))
        .build();
  }

  private static SingleGenerationRequest single(String prompt, Parameters params) {
    return SingleGenerationRequest.newBuilder()
        .setModelId(MODEL)
        .setRequest(GenerationRequest.newBuilder().setText(prompt))
        .setParams(params)
        .build();
  }

  private static GenerationResponse generate(
      GenerationServiceBlockingStub stub, String prompt, Parameters params) {
    return stub.withDeadlineAfter(30, TimeUnit.SECONDS)
        .generate(
            BatchedGenerationRequest.newBuilder()
                .setModelId(MODEL)
                .addRequests(GenerationRequest.newBuilder().setText(prompt))
                .setParams(params)
                .build())
        .getResponses(0);
  }

  /** A GenerateStream of {@link #LONG} tokens that cannot end early, for the test to cancel. */
  private static StreamProbe longStream(ClusterGateway g, String prompt) {
    StreamProbe probe = new StreamProbe(false);
    GenerationServiceGrpc.newStub(cluster.channel(g))
        .withDeadlineAfter(60, TimeUnit.SECONDS)
        .generateStream(single(prompt, greedy(LONG, LONG)), probe);
    return probe;
  }

  private static JsonObject streaming(JsonObject body) {
    return body.copy()
        .put("stream", true)
        .put("stream_options", new JsonObject().put("include_usage", true));
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

  private static long sum(long[] values) {
    long s = 0;
    for (long v : values) {
      s += v;
    }
    return s;
  }
}
