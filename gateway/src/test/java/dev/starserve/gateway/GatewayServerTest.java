package dev.starserve.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.gateway.auth.ApiKeys;
import dev.starserve.gateway.testing.GatewayFixture;
import dev.starserve.proto.fmaas.GenerationRequest;
import dev.starserve.proto.fmaas.GenerationResponse;
import dev.starserve.proto.fmaas.GenerationServiceGrpc;
import dev.starserve.proto.fmaas.Parameters;
import dev.starserve.proto.fmaas.SingleGenerationRequest;
import dev.starserve.proto.fmaas.StoppingCriteria;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.vertx.core.json.JsonObject;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GatewayServerTest {
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

  /** Opens a raw HTTP/1.1 streaming request, so the test controls reading and disconnecting. */
  private static Socket openStream(GatewayFixture gw, String path, JsonObject body, int rcvBuf)
      throws Exception {
    Socket s = new Socket();
    if (rcvBuf > 0) {
      s.setReceiveBufferSize(rcvBuf);
    }
    s.connect(new InetSocketAddress("127.0.0.1", gw.server.httpPort()), 5000);
    byte[] bytes = body.encode().getBytes(StandardCharsets.UTF_8);
    OutputStream out = s.getOutputStream();
    out.write(
        ("POST "
                + path
                + " HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: "
                + bytes.length
                + "\r\n\r\n")
            .getBytes(StandardCharsets.US_ASCII));
    out.write(bytes);
    out.flush();
    return s;
  }

  private static JsonObject longStream() {
    return new JsonObject()
        .put("model", MODEL)
        .put("prompt", "x")
        .put("max_tokens", 4000)
        .put("stream", true);
  }

  @Test
  void apiKeysGuardEveryApiButHealthAndMetrics(@TempDir Path dir) throws Exception {
    Path file = dir.resolve("keys");
    Files.writeString(file, "# gateway keys\n\n  sk-alpha  \nsk-beta\n");
    try (GatewayFixture gw = new GatewayFixture(GatewayLimits.defaults(), ApiKeys.load(file))) {
      HttpResponse<String> openai =
          gw.post("/v1/completions", new JsonObject().put("model", MODEL).put("prompt", "a"));
      assertEquals(401, openai.statusCode());
      assertEquals(
          "invalid_api_key",
          new JsonObject(openai.body()).getJsonObject("error").getString("code"));
      HttpResponse<String> tgi = gw.post("/generate", new JsonObject().put("inputs", "a"));
      assertEquals(401, tgi.statusCode());
      assertTrue(new JsonObject(tgi.body()).containsKey("error_type"));
      assertEquals(401, gw.get("/v1/models").statusCode());
      assertEquals(200, gw.get("/health").statusCode());
      assertEquals(200, gw.get("/metrics").statusCode());
      gw.apiKey = "sk-wrong";
      assertEquals(401, gw.get("/info").statusCode());
      gw.apiKey = "sk-beta";
      assertEquals(200, gw.get("/info").statusCode());
      assertEquals(
          200,
          gw.post("/v1/completions", new JsonObject().put("model", MODEL).put("prompt", "a"))
              .statusCode());
      assertTrue(gw.generator.requests.size() == 1, "only the authorized request ran");
    }
  }

  @Test
  void emptyKeyFileIsRefused(@TempDir Path dir) throws Exception {
    Path file = dir.resolve("keys");
    Files.writeString(file, "# none yet\n");
    assertThrows(java.io.IOException.class, () -> ApiKeys.load(file));
  }

  @Test
  void oversizedBodiesAre413AndUnknownRoutes404And405() {
    try (GatewayFixture gw =
        new GatewayFixture(GatewayLimits.defaults().withMaxBodyBytes(1024), ApiKeys.none())) {
      JsonObject big = new JsonObject().put("model", MODEL).put("prompt", "x".repeat(2000));
      HttpResponse<String> openai = gw.post("/v1/completions", big);
      assertEquals(413, openai.statusCode());
      assertTrue(
          new JsonObject(openai.body())
              .getJsonObject("error")
              .getString("message")
              .contains("1024"));
      HttpResponse<String> tgi =
          gw.post("/generate", new JsonObject().put("inputs", "x".repeat(2000)));
      assertEquals(413, tgi.statusCode());
      assertEquals("validation", new JsonObject(tgi.body()).getString("error_type"));
      assertTrue(gw.generator.requests.isEmpty());
      HttpResponse<String> missing = gw.get("/v1/nothing");
      assertEquals(404, missing.statusCode());
      assertTrue(new JsonObject(missing.body()).containsKey("error"));
      HttpResponse<String> wrongMethod = gw.get("/v1/completions");
      assertEquals(405, wrongMethod.statusCode());
      assertEquals(405, gw.get("/generate").statusCode());
    }
  }

  @Test
  void saturatedModelAnswers429WithRetryAfterAndResourceExhausted() throws Exception {
    try (GatewayFixture gw =
        new GatewayFixture(GatewayLimits.defaults().withMaxInFlightPerModel(1), ApiKeys.none())) {
      gw.generator.eosAfter = 100_000;
      gw.generator.tokenDelayMs = 20;
      Socket hog = openStream(gw, "/v1/completions", longStream(), 0);
      try {
        eventually(
            "the first stream to be admitted", () -> gw.server.generator().inFlight(MODEL) == 1);
        HttpResponse<String> openai =
            gw.post("/v1/completions", new JsonObject().put("model", MODEL).put("prompt", "a"));
        assertEquals(429, openai.statusCode(), openai.body());
        assertEquals("1", openai.headers().firstValue("retry-after").orElseThrow());
        assertEquals(
            "rate_limit_exceeded",
            new JsonObject(openai.body()).getJsonObject("error").getString("code"));
        HttpResponse<String> tgi = gw.post("/generate", new JsonObject().put("inputs", "a"));
        assertEquals(429, tgi.statusCode());
        assertEquals("overloaded", new JsonObject(tgi.body()).getString("error_type"));
        ManagedChannel channel =
            NettyChannelBuilder.forAddress("127.0.0.1", gw.server.grpcPort())
                .usePlaintext()
                .build();
        try {
          Iterator<GenerationResponse> it =
              GenerationServiceGrpc.newBlockingStub(channel)
                  .generateStream(
                      SingleGenerationRequest.newBuilder()
                          .setRequest(GenerationRequest.newBuilder().setText("a"))
                          .build());
          StatusRuntimeException e = assertThrows(StatusRuntimeException.class, it::next);
          assertEquals(Status.Code.RESOURCE_EXHAUSTED, e.getStatus().getCode());
        } finally {
          channel.shutdownNow();
        }
        assertTrue(
            gw.metric(
                    "starserve_gateway_requests_total{api=\"tgi\",model=\""
                        + MODEL
                        + "\",outcome=\"overloaded\"}")
                >= 1);
      } finally {
        hog.close();
      }
      // the hog disconnected: its sequence is cancelled and its slot freed
      eventually("the disconnect to cancel the sequence", () -> gw.generator.cancels.get() == 1);
      eventually("the slot to be freed", () -> gw.server.generator().inFlight(MODEL) == 0);
      gw.generator.eosAfter = 2;
      gw.generator.tokenDelayMs = 1;
      assertEquals(
          200,
          gw.post("/v1/completions", new JsonObject().put("model", MODEL).put("prompt", "a"))
              .statusCode());
    }
  }

  @Test
  void clientDisconnectCancelsTheSequence() throws Exception {
    try (GatewayFixture gw = new GatewayFixture()) {
      gw.generator.eosAfter = 100_000;
      gw.generator.tokenDelayMs = 5;
      for (String path : new String[] {"/v1/completions", "/generate_stream"}) {
        int before = gw.generator.cancels.get();
        JsonObject body =
            path.startsWith("/v1")
                ? longStream()
                : new JsonObject()
                    .put("inputs", "x")
                    .put("parameters", new JsonObject().put("max_new_tokens", 4000));
        try (Socket s = openStream(gw, path, body, 0)) {
          InputStream in = s.getInputStream();
          byte[] buf = new byte[256];
          assertTrue(in.read(buf) > 0, "the stream started");
        }
        eventually(
            path + " disconnect to reach cancel()", () -> gw.generator.cancels.get() == before + 1);
      }
      assertTrue(
          gw.metric(
                  "starserve_gateway_requests_total{api=\"openai_completions\",model=\""
                      + MODEL
                      + "\",outcome=\"cancelled\"}")
              >= 1);
    }
  }

  @Test
  void slowReaderPausesTheGenerationAndResumesOnDrain() throws Exception {
    try (GatewayFixture gw = new GatewayFixture()) {
      gw.generator.tokenPadding = "p".repeat(32 << 10);
      gw.generator.eosAfter = 100_000;
      gw.generator.tokenDelayMs = 1;
      JsonObject body = longStream().put("max_tokens", 600);
      try (Socket s = openStream(gw, "/v1/completions", body, 4096)) {
        eventually(
            "a full write queue to pause the generation", () -> gw.generator.pauses.get() > 0);
        assertTrue(gw.generator.finished.get() == 0, "paused before the end");
        InputStream in = s.getInputStream();
        byte[] buf = new byte[1 << 16];
        long total = 0;
        String tail = "";
        int n;
        while ((n = in.read(buf)) > 0) {
          total += n;
          tail = (tail + new String(buf, 0, n, StandardCharsets.ISO_8859_1));
          tail = tail.substring(Math.max(0, tail.length() - 64));
          if (tail.contains("data: [DONE]")) {
            break;
          }
        }
        assertTrue(tail.contains("data: [DONE]"), "the stream completed after resuming");
        assertTrue(total > 600L * (32 << 10), "every token arrived: " + total);
      }
    }
  }

  @Test
  void grpcCancelAndDeadlineReachTheGenerator() throws Exception {
    try (GatewayFixture gw = new GatewayFixture()) {
      gw.generator.eosAfter = 100_000;
      gw.generator.tokenDelayMs = 5;
      ManagedChannel channel =
          NettyChannelBuilder.forAddress("127.0.0.1", gw.server.grpcPort()).usePlaintext().build();
      try {
        SingleGenerationRequest request =
            SingleGenerationRequest.newBuilder()
                .setRequest(GenerationRequest.newBuilder().setText("a"))
                .setParams(
                    Parameters.newBuilder()
                        .setStopping(StoppingCriteria.newBuilder().setMaxNewTokens(4000)))
                .build();
        // warm the channel up so that the deadline below times the stream, not the connection
        GenerationServiceGrpc.newBlockingStub(channel)
            .modelInfo(dev.starserve.proto.fmaas.ModelInfoRequest.getDefaultInstance());
        StatusRuntimeException deadline =
            assertThrows(
                StatusRuntimeException.class,
                () ->
                    GenerationServiceGrpc.newBlockingStub(channel)
                        .withDeadlineAfter(500, TimeUnit.MILLISECONDS)
                        .generateStream(request)
                        .forEachRemaining(r -> {}));
        assertEquals(Status.Code.DEADLINE_EXCEEDED, deadline.getStatus().getCode());
        eventually("the deadline to cancel the sequence", () -> gw.generator.cancels.get() == 1);

        io.grpc.Context.CancellableContext context = io.grpc.Context.current().withCancellation();
        Iterator<GenerationResponse> it =
            context.call(
                () -> GenerationServiceGrpc.newBlockingStub(channel).generateStream(request));
        it.next();
        it.next();
        context.cancel(null);
        eventually(
            "the client cancel to cancel the sequence", () -> gw.generator.cancels.get() == 2);
      } finally {
        channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
    }
  }

  @Test
  void metricsExposeTheGatewayNamesAndMove() throws Exception {
    try (GatewayFixture gw = new GatewayFixture()) {
      gw.metrics.retry(MODEL);
      gw.metrics.failover(MODEL);
      gw.metrics.queueDepth(MODEL, 3);
      gw.metrics.workers("READY", 2);
      HttpResponse<String> before = gw.get("/metrics");
      assertEquals(200, before.statusCode());
      assertTrue(
          before.headers().firstValue("content-type").orElseThrow().startsWith("text/plain"));
      for (int i = 0; i < 2; i++) {
        gw.post(
            "/v1/completions",
            new JsonObject().put("model", MODEL).put("prompt", "abc").put("max_tokens", 3));
      }
      String text = gw.get("/metrics").body();
      for (String name :
          new String[] {
            "starserve_gateway_requests_total",
            "starserve_gateway_request_duration_seconds_bucket",
            "starserve_gateway_time_to_first_token_seconds_bucket",
            "starserve_gateway_time_per_output_token_seconds_bucket",
            "starserve_gateway_prompt_tokens_total",
            "starserve_gateway_generated_tokens_total",
            "starserve_gateway_retries_total",
            "starserve_gateway_failovers_total",
            "starserve_gateway_queue_depth",
            "starserve_gateway_workers",
            "starserve_gateway_in_flight_sequences",
            "jvm_memory_used_bytes"
          }) {
        assertTrue(text.contains(name), name + " missing");
      }
      String labels = "{api=\"openai_completions\",model=\"" + MODEL + "\"";
      assertEquals(
          2, gw.metric("starserve_gateway_requests_total" + labels + ",outcome=\"success\"}"));
      assertEquals(6, gw.metric("starserve_gateway_generated_tokens_total" + labels + "}"));
      assertEquals(6, gw.metric("starserve_gateway_prompt_tokens_total" + labels + "}"));
      assertEquals(
          2, gw.metric("starserve_gateway_time_to_first_token_seconds_count" + labels + "}"));
      assertEquals(1, gw.metric("starserve_gateway_retries_total{model=\"" + MODEL + "\"}"));
      assertEquals(3, gw.metric("starserve_gateway_queue_depth{model=\"" + MODEL + "\"}"));
      assertEquals(2, gw.metric("starserve_gateway_workers{state=\"READY\"}"));
      HttpResponse<String> bad =
          gw.send(
              gw.request("/v1/completions")
                  .POST(HttpRequest.BodyPublishers.ofString("{}"))
                  .build());
      assertEquals(400, bad.statusCode());
    }
  }

  @Test
  void grpcSlowReaderPausesTheGenerationUntilItRequestsMore() throws Exception {
    try (GatewayFixture gw = new GatewayFixture()) {
      gw.generator.tokenPadding = "p".repeat(32 << 10);
      gw.generator.eosAfter = 100_000;
      gw.generator.tokenDelayMs = 1;
      ManagedChannel channel =
          NettyChannelBuilder.forAddress("127.0.0.1", gw.server.grpcPort()).usePlaintext().build();
      try {
        java.util.concurrent.CompletableFuture<Integer> done =
            new java.util.concurrent.CompletableFuture<>();
        java.util.concurrent.atomic.AtomicReference<io.grpc.stub.ClientCallStreamObserver<?>> ref =
            new java.util.concurrent.atomic.AtomicReference<>();
        java.util.concurrent.atomic.AtomicInteger received =
            new java.util.concurrent.atomic.AtomicInteger();
        GenerationServiceGrpc.newStub(channel)
            .generateStream(
                SingleGenerationRequest.newBuilder()
                    .setRequest(GenerationRequest.newBuilder().setText("a"))
                    .setParams(
                        Parameters.newBuilder()
                            .setStopping(StoppingCriteria.newBuilder().setMaxNewTokens(400)))
                    .build(),
                new io.grpc.stub.ClientResponseObserver<
                    SingleGenerationRequest, GenerationResponse>() {
                  @Override
                  public void beforeStart(
                      io.grpc.stub.ClientCallStreamObserver<SingleGenerationRequest> call) {
                    call.disableAutoRequestWithInitial(1);
                    ref.set(call);
                  }

                  @Override
                  public void onNext(GenerationResponse value) {
                    received.incrementAndGet();
                  }

                  @Override
                  public void onError(Throwable t) {
                    done.completeExceptionally(t);
                  }

                  @Override
                  public void onCompleted() {
                    done.complete(received.get());
                  }
                });
        eventually("flow control to pause the generation", () -> gw.generator.pauses.get() > 0);
        assertEquals(0, gw.generator.finished.get(), "paused before the end");
        ref.get().request(Integer.MAX_VALUE);
        int messages = done.get(20, TimeUnit.SECONDS);
        assertEquals(1, gw.generator.finished.get());
        assertTrue(messages >= 401, "started + 400 token messages + finish: " + messages);
      } finally {
        channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
    }
  }
}
