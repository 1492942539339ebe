package dev.starserve.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.gateway.testing.GatewayFixture;
import dev.starserve.proto.fmaas.BatchedGenerationRequest;
import dev.starserve.proto.fmaas.GenerationRequest;
import dev.starserve.proto.fmaas.GenerationResponse;
import dev.starserve.proto.fmaas.GenerationServiceGrpc;
import dev.starserve.proto.fmaas.ModelInfoRequest;
import dev.starserve.proto.fmaas.Parameters;
import dev.starserve.proto.fmaas.SingleGenerationRequest;
import dev.starserve.proto.fmaas.StoppingCriteria;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.vertx.core.Future;
import io.vertx.core.json.JsonObject;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;

/** {@link GatewayServer#drain}: what SIGTERM does to a gateway. */
class GatewayServerDrainTest {
  private static final String MODEL = "tiny-starcoder";

  private static void eventually(String what, BooleanSupplier condition)
      throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting for " + what);
      }
      Thread.sleep(10);
    }
  }

  /** An OpenAI streaming completion, read whole on another thread. */
  private static CompletableFuture<HttpResponse<String>> openAiStream(GatewayFixture gw) {
    JsonObject body =
        new JsonObject()
            .put("model", MODEL)
            .put("prompt", "x")
            .put("max_tokens", 4000)
            .put("stream", true);
    return gw.http.sendAsync(
        gw.request("/v1/completions")
            .timeout(Duration.ofSeconds(60))
            .header("content-type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body.encode()))
            .build(),
        HttpResponse.BodyHandlers.ofString());
  }

  /** A fmaas GenerateStream, its texts collected on another thread. */
  private static CompletableFuture<String> grpcStream(ManagedChannel channel) {
    SingleGenerationRequest request =
        SingleGenerationRequest.newBuilder()
            .setRequest(GenerationRequest.newBuilder().setText("a"))
            .setParams(
                Parameters.newBuilder()
                    .setStopping(StoppingCriteria.newBuilder().setMaxNewTokens(4000)))
            .build();
    return CompletableFuture.supplyAsync(
        () -> {
          StringBuilder text = new StringBuilder();
          GenerationServiceGrpc.newBlockingStub(channel)
              .generateStream(request)
              .forEachRemaining((GenerationResponse r) -> text.append(r.getText()));
          return text.toString();
        });
  }

  private static ServingStatus health(ManagedChannel channel, String service) {
    return HealthGrpc.newBlockingStub(channel)
        .check(HealthCheckRequest.newBuilder().setService(service).build())
        .getStatus();
  }

  private static String openAiText(String sseBody) {
    StringBuilder text = new StringBuilder();
    List<String> events = GatewayFixture.sseData(sseBody, "data: ");
    assertEquals("[DONE]", events.getLast(), sseBody);
    for (String e : events.subList(0, events.size() - 1)) {
      JsonObject o = new JsonObject(e);
      if (o.containsKey("error")) {
        throw new AssertionError("the stream failed: " + e);
      }
      if (!o.getJsonArray("choices").isEmpty()) {
        text.append(o.getJsonArray("choices").getJsonObject(0).getString("text", ""));
      }
    }
    return text.toString();
  }

  private static <T> T await(Future<T> f, long seconds) throws Exception {
    return f.toCompletionStage().toCompletableFuture().get(seconds, TimeUnit.SECONDS);
  }

  @Test
  void drainRefusesNewRequestsAndLetsRunningStreamsFinish() throws Exception {
    try (GatewayFixture gw = new GatewayFixture()) {
      gw.generator.eosAfter = 300;
      gw.generator.tokenDelayMs = 10;
      ManagedChannel channel =
          NettyChannelBuilder.forAddress("127.0.0.1", gw.server.grpcPort()).usePlaintext().build();
      try {
        assertEquals(ServingStatus.SERVING, health(channel, ""));
        CompletableFuture<HttpResponse<String>> http = openAiStream(gw);
        CompletableFuture<String> grpc = grpcStream(channel);
        eventually("both streams to run", () -> gw.server.generator().inFlight() == 2);

        Future<GatewayServer.DrainResult> drain = gw.server.drain(Duration.ofSeconds(30));
        assertTrue(gw.server.draining());
        assertEquals(ServingStatus.NOT_SERVING, health(channel, ""));
        assertEquals(
            ServingStatus.NOT_SERVING, health(channel, GenerationServiceGrpc.SERVICE_NAME));

        HttpResponse<String> openai =
            gw.post("/v1/completions", new JsonObject().put("model", MODEL).put("prompt", "a"));
        assertEquals(503, openai.statusCode(), openai.body());
        assertEquals("1", openai.headers().firstValue("retry-after").orElseThrow());
        JsonObject error = new JsonObject(openai.body()).getJsonObject("error");
        assertEquals("gateway is draining", error.getString("message"));
        assertEquals("gateway_draining", error.getString("code"));
        HttpResponse<String> tgi = gw.post("/generate_stream", new JsonObject().put("inputs", "a"));
        assertEquals(503, tgi.statusCode(), tgi.body());
        assertEquals("1", tgi.headers().firstValue("retry-after").orElseThrow());
        assertEquals("gateway is draining", new JsonObject(tgi.body()).getString("error"));
        HttpResponse<String> health = gw.get("/health");
        assertEquals(503, health.statusCode());
        assertEquals("draining", new JsonObject(health.body()).getString("status"));
        assertEquals(200, gw.get("/metrics").statusCode(), "/metrics still answers");

        StatusRuntimeException refused =
            assertThrows(
                StatusRuntimeException.class,
                () ->
                    GenerationServiceGrpc.newBlockingStub(channel)
                        .generate(
                            BatchedGenerationRequest.newBuilder()
                                .addRequests(GenerationRequest.newBuilder().setText("a"))
                                .build()));
        assertEquals(Status.Code.UNAVAILABLE, refused.getStatus().getCode());
        assertEquals("gateway is draining", refused.getStatus().getDescription());
        // model info still answers while draining
        GenerationServiceGrpc.newBlockingStub(channel)
            .modelInfo(ModelInfoRequest.newBuilder().setModelId(MODEL).build());
        assertEquals(2, gw.generator.requests.size(), "no new sequence reached the generator");
        assertFalse(drain.isComplete(), "the drain waits for the running streams");
        assertEquals(
            1,
            gw.metric(
                "starserve_gateway_requests_total{api=\"openai_completions\",model=\"\","
                    + "outcome=\"unavailable\"}"));

        String expected = gw.generator.expectedText(4000);
        HttpResponse<String> streamed = http.get(30, TimeUnit.SECONDS);
        assertEquals(200, streamed.statusCode());
        assertEquals(expected, openAiText(streamed.body()), "the HTTP stream ran to its end");
        assertEquals(expected, grpc.get(30, TimeUnit.SECONDS), "the gRPC stream ran to its end");

        GatewayServer.DrainResult result = await(drain, 20);
        assertEquals(new GatewayServer.DrainResult(2, 2, 0, result.took()), result);
        assertEquals(0, gw.generator.cancels.get());
        assertEquals(2, gw.generator.finished.get());
        assertTrue(
            assertThrows(Exception.class, () -> gw.get("/health")).getCause()
                instanceof java.io.IOException,
            "the HTTP server is closed after the drain");
        assertTrue(
            await(gw.server.drain(Duration.ofSeconds(1)), 5) == result, "drain is idempotent");
      } finally {
        channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
    }
  }

  @Test
  void drainTimeoutCutsWhatStillRunsWithAnError() throws Exception {
    try (GatewayFixture gw = new GatewayFixture()) {
      gw.generator.eosAfter = 100_000;
      gw.generator.tokenDelayMs = 10;
      ManagedChannel channel =
          NettyChannelBuilder.forAddress("127.0.0.1", gw.server.grpcPort()).usePlaintext().build();
      try {
        CompletableFuture<HttpResponse<String>> http = openAiStream(gw);
        CompletableFuture<String> grpc = grpcStream(channel);
        eventually("both streams to run", () -> gw.server.generator().inFlight() == 2);
        eventually("tokens to flow", () -> gw.generator.requests.size() == 2);

        long start = System.nanoTime();
        GatewayServer.DrainResult result = await(gw.server.drain(Duration.ofMillis(500)), 20);
        assertTrue(
            System.nanoTime() - start >= TimeUnit.MILLISECONDS.toNanos(500),
            "the drain waited for its timeout");
        assertEquals(2, result.inFlightAtStart());
        assertEquals(0, result.finished());
        assertEquals(2, result.cut());
        assertEquals(0, gw.server.generator().inFlight());

        HttpResponse<String> streamed = http.get(20, TimeUnit.SECONDS);
        assertEquals(200, streamed.statusCode());
        List<String> events = GatewayFixture.sseData(streamed.body(), "data: ");
        assertEquals("[DONE]", events.getLast());
        JsonObject error = new JsonObject(events.get(events.size() - 2)).getJsonObject("error");
        assertTrue(
            error.getString("message").startsWith("gateway is draining and its drain timeout"),
            error.encode());

        ExecutionException cut =
            assertThrows(ExecutionException.class, () -> grpc.get(20, TimeUnit.SECONDS));
        Status status = ((StatusRuntimeException) cut.getCause()).getStatus();
        assertEquals(Status.Code.UNAVAILABLE, status.getCode());
        assertTrue(status.getDescription().startsWith("gateway is draining"), status.toString());
        eventually("both sequences to be cancelled", () -> gw.generator.cancels.get() == 2);
      } finally {
        channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
    }
  }

  @Test
  void drainWithNothingInFlightEndsAtOnce() throws Exception {
    try (GatewayFixture gw = new GatewayFixture()) {
      GatewayServer.DrainResult result = await(gw.server.drain(Duration.ofSeconds(30)), 10);
      assertEquals(0, result.inFlightAtStart());
      assertEquals(0, result.cut());
      assertTrue(result.took().compareTo(Duration.ofSeconds(5)) < 0, result.toString());
    }
  }
}
