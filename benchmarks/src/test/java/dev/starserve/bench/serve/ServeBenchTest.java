package dev.starserve.bench.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The load generator against a scripted HTTP server on port 0 (what it sends, how it reads OpenAI
 * and TGI streams, how it counts what goes wrong) and against a closed port. The real gateway is
 * exercised by the launcher's {@code BenchServeCommandTest}; no assertion here depends on timing.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class ServeBenchTest {
  /** What the scripted server does with the next requests. */
  enum Mode {
    STREAM,
    SILENT,
    UNAVAILABLE,
    NO_DONE
  }

  private static Vertx vertx;
  private static HttpServer server;
  private static volatile Mode mode = Mode.STREAM;
  private static final List<JsonObject> bodies = new CopyOnWriteArrayList<>();
  private final ByteArrayOutputStream progressBytes = new ByteArrayOutputStream();
  private final PrintStream progress = new PrintStream(progressBytes, true, StandardCharsets.UTF_8);

  @BeforeAll
  static void startServer() throws Exception {
    vertx = Vertx.vertx();
    server =
        vertx
            .createHttpServer()
            .requestHandler(ServeBenchTest::handle)
            .listen(0, "127.0.0.1")
            .toCompletionStage()
            .toCompletableFuture()
            .get(10, TimeUnit.SECONDS);
  }

  @AfterAll
  static void stopServer() throws Exception {
    vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
  }

  @BeforeEach
  void reset() {
    mode = Mode.STREAM;
    bodies.clear();
  }

  private static void handle(HttpServerRequest req) {
    req.body()
        .onSuccess(
            b -> {
              JsonObject body = b.toJsonObject();
              bodies.add(body);
              switch (mode) {
                case SILENT -> {} // accepts, never answers
                case UNAVAILABLE ->
                    req.response()
                        .setStatusCode(503)
                        .end(new JsonObject().put("error", "no worker is ready").encode());
                case STREAM, NO_DONE -> stream(req, body);
              }
            });
  }

  /** OpenAI or TGI events for {@code max_tokens} tokens; the prompt's words are its tokens. */
  private static void stream(HttpServerRequest req, JsonObject body) {
    var response = req.response().setChunked(true).putHeader("content-type", "text/event-stream");
    boolean openai = req.path().equals("/v1/completions");
    String prompt = openai ? body.getString("prompt") : body.getString("inputs");
    int promptTokens = prompt.strip().split(" ").length;
    int n =
        openai
            ? body.getInteger("max_tokens")
            : body.getJsonObject("parameters").getInteger("max_new_tokens");
    for (int i = 0; i < n; i++) {
      JsonObject e;
      if (openai) {
        e =
            new JsonObject()
                .put(
                    "choices",
                    new JsonArray().add(new JsonObject().put("index", 0).put("text", " t" + i)))
                .putNull("usage");
      } else {
        e = new JsonObject().put("token", new JsonObject().put("id", i).put("text", " t" + i));
        if (i == n - 1) {
          e.put(
              "details",
              new JsonObject()
                  .put("finish_reason", "length")
                  .put("generated_tokens", n)
                  .put("input_length", promptTokens));
        } else {
          e.putNull("details");
        }
      }
      response.write((openai ? "data: " : "data:") + e.encode() + "\n\n");
    }
    if (openai && mode != Mode.NO_DONE) {
      JsonObject usage =
          new JsonObject()
              .put("choices", new JsonArray())
              .put(
                  "usage",
                  new JsonObject().put("prompt_tokens", promptTokens).put("completion_tokens", n));
      response.write("data: " + usage.encode() + "\n\ndata: [DONE]\n\n");
    }
    response.end();
  }

  private static ServeBenchConfig config(
      Api api, int port, int concurrency, int requests, double rate) {
    return new ServeBenchConfig(
        api,
        new Target("127.0.0.1", port, ""),
        concurrency,
        requests,
        rate,
        12,
        5,
        "m",
        "secret-key",
        null,
        Duration.ofSeconds(30),
        1);
  }

  private ServeBenchReport run(ServeBenchConfig c) throws Exception {
    ServeBenchReport r = ServeBench.run(c, progress);
    assertEquals(
        c.requests(),
        r.completed() + r.failed() + r.cancelledAtLimit() + r.notSent(),
        "every request is accounted for once: " + r.toMap());
    return r;
  }

  @ParameterizedTest
  @EnumSource(
      value = Api.class,
      names = {"OPENAI", "TGI"})
  void aClosedLoopCountsTheServersTokensAndOrdersThePercentiles(Api api) throws Exception {
    ServeBenchReport r = run(config(api, server.actualPort(), 3, 7, 0));
    assertEquals(7, r.completed());
    assertEquals(Map.of(), r.errors());
    assertEquals(7 * 12, r.promptTokens());
    assertEquals(7 * 5, r.outputTokens());
    assertEquals(0, r.shortRequests());
    for (Summary s : List.of(r.ttftMillis(), r.e2eMillis(), r.tpotMillis())) {
      assertEquals(7, s.count());
      assertTrue(
          s.min() <= s.p50() && s.p50() <= s.p90() && s.p90() <= s.p99() && s.p99() <= s.max(),
          s.toString());
    }
    assertTrue(r.ttftMillis().max() <= r.e2eMillis().max());
    assertEquals(7, bodies.size());
    for (JsonObject b : bodies) {
      if (api == Api.OPENAI) {
        assertEquals("m", b.getString("model"));
        assertEquals(5, b.getInteger("max_tokens"));
        assertEquals(5, b.getInteger("min_tokens"));
        assertEquals(true, b.getBoolean("ignore_eos"));
        assertEquals(0, b.getInteger("temperature"));
        assertEquals(true, b.getBoolean("stream"));
        assertEquals(true, b.getJsonObject("stream_options").getBoolean("include_usage"));
      } else {
        JsonObject p = b.getJsonObject("parameters");
        assertEquals(5, p.getInteger("max_new_tokens"));
        assertEquals(false, p.getBoolean("do_sample"));
        assertEquals(true, p.getBoolean("details"));
      }
    }
    String lines = progressBytes.toString(StandardCharsets.UTF_8);
    assertTrue(lines.contains("7/7 done, 0 failed, 0 cancelled, 0 in flight"), lines);
  }

  @Test
  void anOpenLoopSendsEveryArrivalAndSaysSo() throws Exception {
    ServeBenchReport r = run(config(Api.OPENAI, server.actualPort(), 2, 10, 500));
    assertEquals(10, r.completed());
    assertEquals(50, r.outputTokens());
    assertEquals("open", r.toMap().get("mode"));
    assertEquals(500.0, r.toMap().get("rate"));
    assertTrue(r.toText().contains("open loop at 500 requests/s, at most 2 in flight"), r.toText());
  }

  @ParameterizedTest
  @EnumSource(Api.class)
  void aClosedPortGivesConnectErrorsForEveryRequest(Api api) throws Exception {
    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort(); // closed again below: nothing listens there
    }
    ServeBenchReport r = run(config(api, port, 3, 6, 0));
    assertEquals(0, r.completed());
    assertEquals(Map.of(FailureKinds.CONNECT, 6L), r.errors());
    assertTrue(r.errorExamples().get(FailureKinds.CONNECT).contains("refused"), r.toString());
    assertTrue(r.toText().contains("connect"), r.toText());
  }

  @Test
  void anErrorStatusIsCountedByStatusWithTheBodyAsTheExample() throws Exception {
    mode = Mode.UNAVAILABLE;
    ServeBenchReport r = run(config(Api.TGI, server.actualPort(), 2, 4, 0));
    assertEquals(Map.of("http_503", 4L), r.errors());
    assertTrue(r.errorExamples().get("http_503").contains("no worker is ready"), r.toString());
    assertEquals(Double.NaN, r.ttftMillis().p50());
    assertFalse(r.toMap().toString().contains("NaN"), "no NaN in the JSON: " + r.toMap());
  }

  @Test
  void anOpenAiStreamWithoutDoneIsAStreamError() throws Exception {
    mode = Mode.NO_DONE;
    ServeBenchReport r = run(config(Api.OPENAI, server.actualPort(), 2, 3, 0));
    assertEquals(Map.of(FailureKinds.STREAM, 3L), r.errors());
    assertTrue(r.errorExamples().get(FailureKinds.STREAM).contains("[DONE]"));
  }

  @Test
  void theDurationLimitCancelsWhatIsInFlightAndSendsNothingMore() throws Exception {
    mode = Mode.SILENT;
    ServeBenchConfig base = config(Api.OPENAI, server.actualPort(), 2, 5, 0);
    ServeBenchConfig c =
        new ServeBenchConfig(
            base.api(),
            base.target(),
            base.concurrency(),
            base.requests(),
            0,
            base.promptLen(),
            base.genLen(),
            base.model(),
            base.apiKey(),
            Duration.ofMillis(300),
            base.requestTimeout(),
            base.seed());
    ServeBenchReport r = run(c);
    assertTrue(r.stoppedAtDurationLimit());
    assertEquals(2, r.cancelledAtLimit());
    assertEquals(3, r.notSent());
    assertEquals(0, r.completed());
    assertEquals(Map.of(), r.errors());
    assertTrue(bodies.size() <= 2, "nothing is sent beyond the first two: " + bodies.size());
  }

  @Test
  void aRequestOpenLongerThanTheTimeoutIsCancelledAndCountedAsATimeout() throws Exception {
    mode = Mode.SILENT;
    ServeBenchConfig base = config(Api.TGI, server.actualPort(), 2, 4, 0);
    ServeBenchConfig c =
        new ServeBenchConfig(
            base.api(),
            base.target(),
            base.concurrency(),
            base.requests(),
            0,
            base.promptLen(),
            base.genLen(),
            base.model(),
            base.apiKey(),
            null,
            Duration.ofMillis(200),
            base.seed());
    ServeBenchReport r = run(c);
    assertEquals(Map.of(FailureKinds.TIMEOUT, 4L), r.errors());
    assertFalse(r.stoppedAtDurationLimit());
    assertEquals(0, r.cancelledAtLimit());
  }
}
