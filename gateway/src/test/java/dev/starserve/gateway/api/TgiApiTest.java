package dev.starserve.gateway.api;

import static dev.starserve.gateway.testing.GatewayFixture.sseData;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.gateway.testing.GatewayFixture;
import dev.starserve.proto.worker.v1.GenerateRequest;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.net.http.HttpResponse;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class TgiApiTest {
  private static GatewayFixture gw;

  @BeforeAll
  static void start() {
    gw = new GatewayFixture();
  }

  @AfterAll
  static void stop() {
    gw.close();
  }

  @BeforeEach
  void reset() {
    gw.generator.requests.clear();
    gw.generator.eosAfter = 5;
    gw.generator.failAfterTokens = -1;
  }

  private static JsonObject body(JsonObject parameters) {
    return new JsonObject().put("inputs", "ab").put("parameters", parameters);
  }

  @Test
  void generateWithDetailsReportsTokensPrefillAndTopTokens() {
    gw.generator.eosAfter = 2;
    HttpResponse<String> r =
        gw.post(
            "/generate",
            body(
                new JsonObject()
                    .put("max_new_tokens", 10)
                    .put("details", true)
                    .put("decoder_input_details", true)
                    .put("top_n_tokens", 2)));
    assertEquals(200, r.statusCode(), r.body());
    JsonObject o = new JsonObject(r.body());
    assertEquals(" w0 w1", o.getString("generated_text"));
    JsonObject d = o.getJsonObject("details");
    assertEquals("eos_token", d.getString("finish_reason"));
    assertEquals(3, d.getInteger("generated_tokens"));
    assertNull(d.getValue("seed"), "greedy requests have no seed");
    assertEquals(
        new JsonArray()
            .add(new JsonObject().put("id", (int) 'a').put("text", "a").putNull("logprob"))
            .add(new JsonObject().put("id", (int) 'b').put("text", "b").put("logprob", -1.0)),
        d.getJsonArray("prefill"));
    JsonArray tokens = d.getJsonArray("tokens");
    assertEquals(3, tokens.size());
    assertEquals(
        new JsonObject()
            .put("id", 100)
            .put("text", " w0")
            .put("logprob", -0.5)
            .put("special", false),
        tokens.getJsonObject(0));
    assertEquals(true, tokens.getJsonObject(2).getBoolean("special"), "EOS is special");
    assertEquals(2, d.getJsonArray("top_tokens").getJsonArray(0).size());
    GenerateRequest sent = gw.generator.requests.getFirst();
    assertEquals(0f, sent.getSampling().getTemperature());
    assertTrue(sent.getStopping().getIncludeStopSequence(), "TGI keeps stop sequences in the text");
  }

  @Test
  void generateMapsSamplingAsTgiDoes() {
    gw.post(
        "/generate",
        body(
            new JsonObject()
                .put("top_k", 5)
                .put("seed", 3)
                .put("return_full_text", true)
                .put("truncate", 7)));
    gw.post("/generate", body(new JsonObject().put("do_sample", true).put("temperature", 0.5)));
    GenerateRequest topK = gw.generator.requests.get(0);
    assertEquals(1f, topK.getSampling().getTemperature(), "a warper turns sampling on at T=1");
    assertEquals(5, topK.getSampling().getTopK());
    assertEquals(3, topK.getSampling().getSeed());
    assertEquals(7, topK.getTruncateInputTokens());
    assertEquals(100, topK.getStopping().getMaxNewTokens(), "TGI's default max_new_tokens");
    assertEquals(0.5f, gw.generator.requests.get(1).getSampling().getTemperature());
    JsonObject full =
        new JsonObject(
            gw.post(
                    "/generate",
                    body(new JsonObject().put("return_full_text", true).put("max_new_tokens", 1)))
                .body());
    assertEquals("ab w0", full.getString("generated_text"));
  }

  @Test
  void generateStreamSendsOneEventPerTokenAndDetailsLast() {
    HttpResponse<String> r =
        gw.post(
            "/generate_stream",
            body(new JsonObject().put("max_new_tokens", 3).put("do_sample", true).put("seed", 9)));
    assertEquals(200, r.statusCode());
    List<String> data = sseData(r.body(), "data:");
    assertEquals(3, data.size());
    StringBuilder text = new StringBuilder();
    for (int i = 0; i < 3; i++) {
      JsonObject e = new JsonObject(data.get(i));
      JsonObject token = e.getJsonObject("token");
      assertEquals(100 + i, token.getInteger("id"));
      text.append(token.getString("text"));
      if (i < 2) {
        assertNull(e.getValue("generated_text"));
        assertNull(e.getValue("details"));
      }
    }
    JsonObject last = new JsonObject(data.getLast());
    assertEquals(" w0 w1 w2", last.getString("generated_text"));
    assertEquals(text.toString(), last.getString("generated_text"));
    assertEquals("length", last.getJsonObject("details").getString("finish_reason"));
    assertEquals(3, last.getJsonObject("details").getInteger("generated_tokens"));
    assertEquals(9, last.getJsonObject("details").getInteger("seed"));
  }

  @Test
  void rootRouteFollowsTheStreamFlag() {
    HttpResponse<String> unary = gw.post("/", body(new JsonObject().put("max_new_tokens", 1)));
    assertEquals(" w0", new JsonObject(unary.body()).getString("generated_text"));
    HttpResponse<String> stream =
        gw.post("/", body(new JsonObject().put("max_new_tokens", 1)).put("stream", true));
    assertEquals(1, sseData(stream.body(), "data:").size());
  }

  @Test
  void infoHealthAndTokenize() {
    JsonObject info = new JsonObject(gw.get("/info").body());
    assertEquals("tiny-starcoder", info.getString("model_id"));
    assertEquals(8192, info.getInteger("max_total_tokens"));
    assertEquals(16, info.getInteger("max_stop_sequences"));
    assertEquals(200, gw.get("/health").statusCode());
    HttpResponse<String> t = gw.post("/tokenize", new JsonObject().put("inputs", "def f"));
    assertEquals(
        new JsonArray()
            .add(new JsonObject().put("id", 1000).put("text", "def").put("start", 0).put("stop", 3))
            .add(new JsonObject().put("id", 1003).put("text", " f").put("start", 3).put("stop", 5)),
        new JsonArray(t.body()));
  }

  @Test
  void healthIs503WithoutWorkers() {
    var saved = gw.generator.models;
    gw.generator.models = List.of();
    try {
      HttpResponse<String> r = gw.get("/health");
      assertEquals(503, r.statusCode());
      HttpResponse<String> g = gw.post("/generate", body(new JsonObject()));
      assertEquals(503, g.statusCode());
      assertEquals("unhealthy", new JsonObject(g.body()).getString("error_type"));
    } finally {
      gw.generator.models = saved;
    }
  }

  static Stream<Arguments> invalid() {
    return Stream.of(
        Arguments.of("best_of", 2, "parameters.best_of must be 1"),
        Arguments.of("watermark", true, "parameters.watermark is not supported"),
        Arguments.of("temperature", 0, "parameters.temperature must be in (0, 100], got 0"),
        Arguments.of("top_p", 1.0, "parameters.top_p must be in (0, 1), got 1"),
        Arguments.of("typical_p", 0, "parameters.typical_p must be in (0, 1), got 0"),
        Arguments.of("top_k", 0, "parameters.top_k must be in [1, "),
        Arguments.of(
            "max_new_tokens", 5000, "parameters.max_new_tokens must be in [1, 4096], got 5000"),
        Arguments.of("repetition_penalty", 0, "parameters.repetition_penalty must be in (0, 100]"),
        Arguments.of(
            "frequency_penalty", 3, "parameters.frequency_penalty must be in [-2, 2], got 3"),
        Arguments.of("top_n_tokens", 6, "parameters.top_n_tokens must be in [0, 5], got 6"),
        Arguments.of("truncate", 0, "parameters.truncate must be in [1, 8192], got 0"),
        Arguments.of("seed", -1, "parameters.seed must be in [0, "),
        Arguments.of(
            "stop",
            new JsonArray(java.util.Collections.nCopies(17, "x")),
            "parameters.stop may hold at most 16 sequences, got 17"));
  }

  @ParameterizedTest(name = "{0}={1}")
  @MethodSource("invalid")
  void invalidParametersAre422Validation(String field, Object value, String message) {
    HttpResponse<String> r = gw.post("/generate", body(new JsonObject().put(field, value)));
    assertEquals(422, r.statusCode(), r.body());
    JsonObject e = new JsonObject(r.body());
    assertEquals("validation", e.getString("error_type"));
    assertTrue(e.getString("error").contains(message), e.getString("error"));
    assertTrue(gw.generator.requests.isEmpty());
  }

  @Test
  void emptyOrMissingInputsAre422() {
    assertEquals(422, gw.post("/generate", new JsonObject().put("inputs", "")).statusCode());
    assertEquals(422, gw.post("/generate", new JsonObject()).statusCode());
    assertEquals(422, gw.post("/tokenize", new JsonObject()).statusCode());
  }

  @Test
  void generationFailureIs424() {
    gw.generator.failWith =
        new dev.starserve.gateway.generate.GenerationException(
            dev.starserve.gateway.generate.GenerationException.Kind.GENERATION_FAILED, "boom");
    try {
      HttpResponse<String> r = gw.post("/generate", body(new JsonObject()));
      assertEquals(424, r.statusCode());
      assertEquals(
          new JsonObject().put("error", "boom").put("error_type", "generation"),
          new JsonObject(r.body()));
    } finally {
      gw.generator.failWith = null;
    }
  }

  @Test
  void aFailureMidStreamEndsTheStreamWithAnErrorEvent() {
    gw.generator.failAfterTokens = 3;
    List<String> data =
        sseData(
            gw.post("/generate_stream", body(new JsonObject().put("max_new_tokens", 10))).body(),
            "data:");
    // tokens 0 and 1 went out; token 2 was held for the details of a last event that never came
    assertEquals(3, data.size());
    assertEquals(" w1", new JsonObject(data.get(1)).getJsonObject("token").getString("text"));
    assertEquals(
        new JsonObject().put("error", "worker lost").put("error_type", "generation"),
        new JsonObject(data.getLast()));
  }
}
