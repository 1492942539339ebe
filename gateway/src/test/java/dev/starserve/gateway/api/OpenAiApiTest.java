package dev.starserve.gateway.api;

import static dev.starserve.gateway.testing.GatewayFixture.sseData;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.gateway.testing.GatewayFixture;
import dev.starserve.gateway.testing.ScriptedGenerator;
import dev.starserve.proto.worker.v1.GenerateRequest;
import dev.starserve.proto.worker.v1.Prompt;
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

class OpenAiApiTest {
  private static GatewayFixture gw;
  private static final String MODEL = ScriptedGenerator.MODEL;

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

  private static JsonObject completion() {
    return new JsonObject().put("model", MODEL).put("prompt", "def f(");
  }

  @Test
  void completionAnswersTextUsageAndLengthFinish() {
    HttpResponse<String> r = gw.post("/v1/completions", completion().put("max_tokens", 3));
    assertEquals(200, r.statusCode(), r.body());
    JsonObject o = new JsonObject(r.body());
    assertEquals("text_completion", o.getString("object"));
    assertTrue(o.getString("id").startsWith("cmpl-"));
    assertEquals(MODEL, o.getString("model"));
    JsonObject choice = o.getJsonArray("choices").getJsonObject(0);
    assertEquals(0, choice.getInteger("index"));
    assertEquals(" w0 w1 w2", choice.getString("text"));
    assertEquals("length", choice.getString("finish_reason"));
    assertNull(choice.getValue("logprobs"));
    assertEquals(
        new JsonObject().put("prompt_tokens", 6).put("completion_tokens", 3).put("total_tokens", 9),
        o.getJsonObject("usage"));
    GenerateRequest sent = gw.generator.requests.getFirst();
    assertEquals("def f(", sent.getPrompt().getText());
    assertEquals(3, sent.getStopping().getMaxNewTokens());
    assertEquals(1.0f, sent.getSampling().getTemperature());
  }

  @Test
  void completionDefaultsToSixteenTokensAndEosIsStop() {
    gw.generator.eosAfter = 2;
    JsonObject o = new JsonObject(gw.post("/v1/completions", completion()).body());
    assertEquals(16, gw.generator.requests.getFirst().getStopping().getMaxNewTokens());
    assertEquals("stop", o.getJsonArray("choices").getJsonObject(0).getString("finish_reason"));
    assertEquals(" w0 w1", o.getJsonArray("choices").getJsonObject(0).getString("text"));
  }

  @Test
  void vllmMinTokensAndIgnoreEosReachTheWorkerAndDefaultToOff() {
    gw.post("/v1/completions", completion().put("max_tokens", 8));
    gw.post(
        "/v1/completions",
        completion().put("max_tokens", 8).put("min_tokens", 8).put("ignore_eos", true));
    GenerateRequest plain = gw.generator.requests.get(0);
    assertEquals(0, plain.getStopping().getMinNewTokens());
    assertFalse(plain.getStopping().getIgnoreEos());
    GenerateRequest exact = gw.generator.requests.get(1);
    assertEquals(8, exact.getStopping().getMinNewTokens());
    assertTrue(exact.getStopping().getIgnoreEos());
  }

  @Test
  void completionStreamIsFramedAsOpenAiWithUsageAndDone() {
    HttpResponse<String> r =
        gw.post(
            "/v1/completions",
            completion()
                .put("max_tokens", 4)
                .put("stream", true)
                .put("stream_options", new JsonObject().put("include_usage", true)));
    assertEquals(200, r.statusCode());
    assertTrue(
        r.headers().firstValue("content-type").orElseThrow().startsWith("text/event-stream"));
    List<String> data = sseData(r.body(), "data: ");
    assertEquals("[DONE]", data.getLast());
    StringBuilder text = new StringBuilder();
    String finish = null;
    JsonObject usage = null;
    for (String d : data.subList(0, data.size() - 1)) {
      JsonObject chunk = new JsonObject(d);
      assertEquals("text_completion", chunk.getString("object"));
      assertTrue(chunk.containsKey("usage"), "include_usage puts usage on every chunk");
      if (chunk.getJsonArray("choices").isEmpty()) {
        usage = chunk.getJsonObject("usage");
        continue;
      }
      JsonObject c = chunk.getJsonArray("choices").getJsonObject(0);
      text.append(c.getString("text"));
      if (c.getString("finish_reason") != null) {
        finish = c.getString("finish_reason");
      }
    }
    assertEquals(" w0 w1 w2 w3", text.toString());
    assertEquals("length", finish);
    assertEquals(4, usage.getInteger("completion_tokens"));
    assertEquals(6, usage.getInteger("prompt_tokens"));
  }

  @Test
  void completionLogprobsHaveTheLegacyShape() {
    JsonObject o =
        new JsonObject(
            gw.post("/v1/completions", completion().put("max_tokens", 2).put("logprobs", 2))
                .body());
    JsonObject lp = o.getJsonArray("choices").getJsonObject(0).getJsonObject("logprobs");
    assertEquals(new JsonArray().add(" w0").add(" w1"), lp.getJsonArray("tokens"));
    assertEquals(new JsonArray().add(-0.5).add(-0.5), lp.getJsonArray("token_logprobs"));
    assertEquals(
        new JsonObject().put(" w0", -0.5).put(" a1", -1.5),
        lp.getJsonArray("top_logprobs").getJsonObject(0));
    assertEquals(new JsonArray().add(0).add(3), lp.getJsonArray("text_offset"));
    assertEquals(2, gw.generator.requests.getFirst().getTopLogprobs());
  }

  @Test
  void echoPrependsThePromptWithPromptLogprobs() {
    JsonObject o =
        new JsonObject(
            gw.post(
                    "/v1/completions",
                    completion()
                        .put("prompt", "ab")
                        .put("max_tokens", 1)
                        .put("echo", true)
                        .put("logprobs", 0))
                .body());
    JsonObject choice = o.getJsonArray("choices").getJsonObject(0);
    assertEquals("ab w0", choice.getString("text"));
    JsonObject lp = choice.getJsonObject("logprobs");
    assertEquals(new JsonArray().add("a").add("b").add(" w0"), lp.getJsonArray("tokens"));
    assertEquals(new JsonArray().addNull().add(-1.0).add(-0.5), lp.getJsonArray("token_logprobs"));
    assertEquals(new JsonArray().add(0).add(1).add(2), lp.getJsonArray("text_offset"));
    GenerateRequest sent = gw.generator.requests.getFirst();
    assertTrue(sent.getReturnPromptTokens());
    assertTrue(sent.getPromptLogprobs());
  }

  @Test
  void nAndPromptArraysMakeOneSequencePerChoiceWithConsecutiveSeeds() {
    JsonObject o =
        new JsonObject(
            gw.post(
                    "/v1/completions",
                    completion()
                        .put("prompt", new JsonArray().add("a").add("bb"))
                        .put("n", 2)
                        .put("seed", 7)
                        .put("max_tokens", 1))
                .body());
    JsonArray choices = o.getJsonArray("choices");
    assertEquals(4, choices.size());
    for (int i = 0; i < 4; i++) {
      assertEquals(i, choices.getJsonObject(i).getInteger("index"));
    }
    List<GenerateRequest> sent = gw.generator.requests;
    assertEquals(4, sent.size());
    assertEquals(
        List.of(7L, 8L, 7L, 8L), sent.stream().map(r -> r.getSampling().getSeed()).toList());
    assertEquals(
        List.of("a", "a", "bb", "bb"), sent.stream().map(r -> r.getPrompt().getText()).toList());
    assertEquals(4, sent.stream().map(GenerateRequest::getRequestId).distinct().count());
    // prompt tokens count once per prompt: 1 + 2
    assertEquals(3, o.getJsonObject("usage").getInteger("prompt_tokens"));
    assertEquals(4, o.getJsonObject("usage").getInteger("completion_tokens"));
  }

  @Test
  void tokenIdPromptsAndSuffixBecomeWorkerPrompts() {
    gw.post("/v1/completions", completion().put("prompt", new JsonArray().add(1).add(2).add(3)));
    gw.post(
        "/v1/completions",
        completion()
            .put(
                "prompt", new JsonArray().add(new JsonArray().add(5)).add(new JsonArray().add(6))));
    gw.post("/v1/completions", completion().put("suffix", "return x"));
    List<GenerateRequest> sent = gw.generator.requests;
    assertEquals(List.of(1, 2, 3), sent.get(0).getPrompt().getTokenIds().getIdsList());
    assertEquals(List.of(5), sent.get(1).getPrompt().getTokenIds().getIdsList());
    assertEquals(List.of(6), sent.get(2).getPrompt().getTokenIds().getIdsList());
    assertEquals(Prompt.KindCase.FIM, sent.get(3).getPrompt().getKindCase());
    assertEquals("def f(", sent.get(3).getPrompt().getFim().getPrefix());
    assertEquals("return x", sent.get(3).getPrompt().getFim().getSuffix());
  }

  @Test
  void chatAnswersAnAssistantMessage() {
    JsonObject body =
        new JsonObject()
            .put("model", MODEL)
            .put("max_tokens", 2)
            .put("temperature", 0)
            .put("stop", "\n")
            .put(
                "messages",
                new JsonArray()
                    .add(new JsonObject().put("role", "system").put("content", "be brief"))
                    .add(new JsonObject().put("role", "user").put("content", "hi")));
    HttpResponse<String> r = gw.post("/v1/chat/completions", body);
    assertEquals(200, r.statusCode(), r.body());
    JsonObject o = new JsonObject(r.body());
    assertEquals("chat.completion", o.getString("object"));
    assertTrue(o.getString("id").startsWith("chatcmpl-"));
    JsonObject choice = o.getJsonArray("choices").getJsonObject(0);
    assertEquals(
        new JsonObject().put("role", "assistant").put("content", " w0 w1"),
        choice.getJsonObject("message"));
    assertEquals("length", choice.getString("finish_reason"));
    GenerateRequest sent = gw.generator.requests.getFirst();
    assertEquals(2, sent.getPrompt().getChat().getMessagesCount());
    assertEquals("user", sent.getPrompt().getChat().getMessages(1).getRole());
    assertEquals(0f, sent.getSampling().getTemperature());
    assertEquals(List.of("\n"), sent.getStopping().getStopSequencesList());
  }

  @Test
  void chatStreamStartsWithTheRoleAndCarriesLogprobs() {
    JsonObject body =
        new JsonObject()
            .put("model", MODEL)
            .put("max_completion_tokens", 3)
            .put("stream", true)
            .put("logprobs", true)
            .put("top_logprobs", 2)
            .put(
                "messages",
                new JsonArray().add(new JsonObject().put("role", "user").put("content", "hi")));
    List<String> data = sseData(gw.post("/v1/chat/completions", body).body(), "data: ");
    assertEquals("[DONE]", data.getLast());
    JsonObject first = new JsonObject(data.getFirst());
    assertEquals("chat.completion.chunk", first.getString("object"));
    assertEquals("assistant", choice(first).getJsonObject("delta").getString("role"));
    StringBuilder text = new StringBuilder();
    int logprobEntries = 0;
    for (String d : data.subList(1, data.size() - 1)) {
      JsonObject c = choice(new JsonObject(d));
      text.append(c.getJsonObject("delta").getString("content", ""));
      JsonObject lp = c.getJsonObject("logprobs");
      if (lp != null) {
        for (Object e : lp.getJsonArray("content")) {
          JsonObject entry = (JsonObject) e;
          assertEquals(2, entry.getJsonArray("top_logprobs").size());
          assertEquals(-0.5, entry.getDouble("logprob"));
          logprobEntries++;
        }
      }
    }
    assertEquals(" w0 w1 w2", text.toString());
    assertEquals(3, logprobEntries);
    assertEquals(
        "length", choice(new JsonObject(data.get(data.size() - 2))).getString("finish_reason"));
  }

  private static JsonObject choice(JsonObject chunk) {
    return chunk.getJsonArray("choices").getJsonObject(0);
  }

  @Test
  void modelsListsTheServedModels() {
    JsonObject o = new JsonObject(gw.get("/v1/models").body());
    assertEquals("list", o.getString("object"));
    assertEquals(MODEL, o.getJsonArray("data").getJsonObject(0).getString("id"));
    assertEquals("model", o.getJsonArray("data").getJsonObject(0).getString("object"));
  }

  @Test
  void unknownModelIs404ModelNotFound() {
    HttpResponse<String> r = gw.post("/v1/completions", completion().put("model", "gpt-9"));
    assertEquals(404, r.statusCode());
    JsonObject error = new JsonObject(r.body()).getJsonObject("error");
    assertEquals("model_not_found", error.getString("code"));
    assertEquals("invalid_request_error", error.getString("type"));
    assertTrue(error.getString("message").contains("gpt-9"));
  }

  static Stream<Arguments> invalidCompletions() {
    return Stream.of(
        Arguments.of("temperature", 2.5, "temperature must be in [0, 2], got 2.5"),
        Arguments.of("top_p", 0, "top_p must be in (0, 1], got 0"),
        Arguments.of("n", 17, "n must be in [1, 16], got 17"),
        Arguments.of("max_tokens", 0, "max_tokens must be in [1, 4096], got 0"),
        Arguments.of("max_tokens", 4097, "max_tokens must be in [1, 4096], got 4097"),
        Arguments.of("logprobs", 6, "logprobs must be in [0, 5], got 6"),
        Arguments.of("presence_penalty", -3, "presence_penalty must be in [-2, 2], got -3"),
        Arguments.of("frequency_penalty", 2.5, "frequency_penalty must be in [-2, 2], got 2.5"),
        Arguments.of("best_of", 2, "best_of must be in [1, 1], got 2"),
        Arguments.of(
            "logit_bias", new JsonObject().put("50256", -100), "logit_bias is not supported"),
        Arguments.of(
            "stop",
            new JsonArray().add("a").add("b").add("c").add("d").add("e"),
            "stop may hold at most 4 sequences, got 5"),
        Arguments.of(
            "stop", "x".repeat(257), "stop sequences must be 1 to 256 characters long, got 257"),
        Arguments.of("prompt", new JsonArray(), "prompt must be a string"),
        Arguments.of("prompt", new JsonArray().add(-1), "token ids must be integers in [0, 49151]"),
        Arguments.of("max_tokens", "ten", "max_tokens must be an integer"),
        Arguments.of("min_tokens", 17, "min_tokens must be in [0, 16], got 17"),
        Arguments.of("ignore_eos", "yes", "ignore_eos must be true or false"));
  }

  @ParameterizedTest(name = "{0}={1}")
  @MethodSource("invalidCompletions")
  void invalidCompletionIs400NamingTheField(String field, Object value, String message) {
    HttpResponse<String> r = gw.post("/v1/completions", completion().put(field, value));
    assertEquals(400, r.statusCode(), r.body());
    JsonObject error = new JsonObject(r.body()).getJsonObject("error");
    assertEquals("invalid_request_error", error.getString("type"));
    assertTrue(error.getString("message").contains(message), error.getString("message"));
    assertTrue(error.getString("param").startsWith(field), error.encode());
    assertTrue(error.containsKey("code"));
    assertTrue(gw.generator.requests.isEmpty());
  }

  @Test
  void chatValidationNamesTheField() {
    JsonObject base =
        new JsonObject()
            .put("model", MODEL)
            .put(
                "messages",
                new JsonArray().add(new JsonObject().put("role", "user").put("content", "hi")));
    assertError(
        gw.post("/v1/chat/completions", base.copy().put("top_logprobs", 21)),
        "top_logprobs must be in [0, 20], got 21");
    assertError(
        gw.post("/v1/chat/completions", base.copy().put("top_logprobs", 2)),
        "top_logprobs requires logprobs");
    assertError(
        gw.post("/v1/chat/completions", base.copy().put("messages", new JsonArray())),
        "messages must be a non-empty array");
    assertError(
        gw.post(
            "/v1/chat/completions",
            base.copy()
                .put(
                    "messages",
                    new JsonArray().add(new JsonObject().put("role", "tool").put("content", "x")))),
        "messages[0].role must be");
    assertError(
        gw.post("/v1/chat/completions", base.copy().put("tools", new JsonArray())),
        "tools is not supported");
    assertError(
        gw.post("/v1/chat/completions", base.copy().put("max_completion_tokens", 5000)),
        "max_completion_tokens must be in [1, 4096]");
    assertError(
        gw.post("/v1/chat/completions", base.copy().put("stream_options", new JsonObject())),
        "stream_options is only allowed with stream");
    HttpResponse<String> bad =
        gw.send(
            gw.request("/v1/chat/completions")
                .POST(java.net.http.HttpRequest.BodyPublishers.ofString("{not json"))
                .build());
    assertEquals(400, bad.statusCode());
    assertFalse(new JsonObject(bad.body()).getJsonObject("error").getString("message").isEmpty());
  }

  private static void assertError(HttpResponse<String> r, String message) {
    assertEquals(400, r.statusCode(), r.body());
    String got = new JsonObject(r.body()).getJsonObject("error").getString("message");
    assertTrue(got.contains(message), got);
  }

  @Test
  void streamedChoicesOfNAreIndexedAndEachFinishes() {
    List<String> data =
        sseData(
            gw.post(
                    "/v1/completions",
                    completion().put("n", 3).put("max_tokens", 2).put("stream", true))
                .body(),
            "data: ");
    StringBuilder[] texts = {new StringBuilder(), new StringBuilder(), new StringBuilder()};
    int finishes = 0;
    for (String d : data.subList(0, data.size() - 1)) {
      JsonObject c = new JsonObject(d).getJsonArray("choices").getJsonObject(0);
      texts[c.getInteger("index")].append(c.getString("text"));
      if (c.getString("finish_reason") != null) {
        finishes++;
      }
    }
    assertEquals(3, finishes);
    for (StringBuilder t : texts) {
      assertEquals(" w0 w1", t.toString());
    }
  }

  @Test
  void aFailureBeforeTheFirstEventIsAnHttpErrorAndAfterItAnErrorEvent() {
    gw.generator.failWith =
        new dev.starserve.gateway.generate.GenerationException(
            dev.starserve.gateway.generate.GenerationException.Kind.UNAVAILABLE, "no worker left");
    try {
      HttpResponse<String> r = gw.post("/v1/completions", completion().put("stream", true));
      assertEquals(503, r.statusCode());
      assertEquals(
          "no worker left", new JsonObject(r.body()).getJsonObject("error").getString("message"));
    } finally {
      gw.generator.failWith = null;
    }
  }

  @Test
  void aFailureMidStreamSendsAnErrorObjectThenDone() {
    gw.generator.failAfterTokens = 2;
    HttpResponse<String> r =
        gw.post("/v1/completions", completion().put("max_tokens", 10).put("stream", true));
    assertEquals(200, r.statusCode());
    List<String> data = sseData(r.body(), "data: ");
    assertEquals("[DONE]", data.getLast());
    assertEquals(" w0", choices(new JsonObject(data.get(0))).getJsonObject(0).getString("text"));
    assertEquals(" w1", choices(new JsonObject(data.get(1))).getJsonObject(0).getString("text"));
    JsonObject error = new JsonObject(data.get(2)).getJsonObject("error");
    assertEquals("worker lost", error.getString("message"));
    assertEquals(4, data.size());
  }

  private static JsonArray choices(JsonObject chunk) {
    return chunk.getJsonArray("choices");
  }
}
