package dev.starserve.gateway.api.tgi;

import dev.starserve.gateway.GatewayLimits;
import dev.starserve.gateway.api.Collector;
import dev.starserve.gateway.api.InvalidRequest;
import dev.starserve.gateway.api.Models;
import dev.starserve.gateway.api.Params;
import dev.starserve.gateway.api.SequenceGroup;
import dev.starserve.gateway.api.SequenceResult;
import dev.starserve.gateway.generate.GenerationException;
import dev.starserve.gateway.generate.Generator;
import dev.starserve.gateway.http.HttpErrors;
import dev.starserve.gateway.http.SseStream;
import dev.starserve.gateway.metrics.GatewayMetrics;
import dev.starserve.gateway.metrics.GatewayMetrics.Outcome;
import dev.starserve.gateway.metrics.RequestTimer;
import dev.starserve.proto.worker.v1.FinishReason;
import dev.starserve.proto.worker.v1.Finished;
import dev.starserve.proto.worker.v1.PromptToken;
import dev.starserve.proto.worker.v1.Started;
import dev.starserve.proto.worker.v1.Token;
import dev.starserve.proto.worker.v1.TokenizeRequest;
import dev.starserve.proto.worker.v1.TokenizeResponse;
import dev.starserve.proto.worker.v1.Tokens;
import dev.starserve.proto.worker.v1.TopToken;
import dev.starserve.proto.worker.v1.WorkerInfo;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import java.util.List;
import java.util.UUID;

/**
 * TGI's HTTP API as editor plugins (llm-vscode) and huggingface_hub speak it: {@code /generate},
 * {@code /generate_stream}, {@code /} (with a {@code stream} flag), {@code /info}, {@code /health},
 * {@code /tokenize}.
 */
public final class TgiApi {
  private final Generator generator;
  private final GatewayLimits limits;
  private final GatewayMetrics metrics;

  public TgiApi(Generator generator, GatewayLimits limits, GatewayMetrics metrics) {
    this.generator = generator;
    this.limits = limits;
    this.metrics = metrics;
  }

  public void mount(Router router) {
    router.post("/generate").handler(ctx -> generate(ctx, false));
    router.post("/generate_stream").handler(ctx -> generate(ctx, true));
    router.post("/").handler(ctx -> generate(ctx, null));
    router.get("/info").handler(this::info);
    router.get("/health").handler(this::health);
    router.post("/tokenize").handler(this::tokenize);
  }

  /** Sends {@code {"error": ..., "error_type": ...}} with the status. */
  public static void sendError(HttpServerResponse response, int status, String message) {
    if (response.headWritten() || response.closed()) {
      return;
    }
    response
        .setStatusCode(status)
        .putHeader("content-type", "application/json")
        .end(errorBody(status, message).encode());
  }

  private static JsonObject errorBody(int status, String message) {
    String type =
        switch (status) {
          case 400, 404, 413, 422 -> "validation";
          case 401 -> "authentication";
          case 429 -> "overloaded";
          case 503 -> "unhealthy";
          default -> "generation";
        };
    return new JsonObject().put("error", message).put("error_type", type);
  }

  private static int status(GenerationException.Kind kind) {
    return switch (kind) {
      case INVALID_ARGUMENT, MODEL_NOT_FOUND -> 422;
      case GENERATION_FAILED, DEADLINE_EXCEEDED -> 424;
      default -> HttpErrors.status(kind);
    };
  }

  private void fail(HttpServerResponse response, RequestTimer timer, GenerationException e) {
    timer.end(HttpErrors.outcome(e.kind()));
    if (e.kind() == GenerationException.Kind.OVERLOADED) {
      response.putHeader("retry-after", Integer.toString(limits.retryAfterSeconds()));
    }
    sendError(response, status(e.kind()), e.getMessage());
  }

  private static JsonObject body(RoutingContext ctx) {
    try {
      JsonObject body = ctx.body().asJsonObject();
      if (body != null) {
        return body;
      }
    } catch (RuntimeException e) {
      // falls through to the validation error
    }
    throw new InvalidRequest(null, "the request body must be a JSON object");
  }

  private void generate(RoutingContext ctx, Boolean streamRoute) {
    RequestTimer timer = metrics.startRequest("tgi", "");
    HttpServerResponse response = ctx.response();
    try {
      JsonObject body = body(ctx);
      boolean stream =
          streamRoute != null ? streamRoute : new Params(body, "").bool("stream", false);
      WorkerInfo model = Models.resolve(generator, null, true);
      timer.model(model.getModelId());
      TgiRequests.Plan plan = TgiRequests.parse(body, model, limits, "tgi-" + UUID.randomUUID());
      if (stream) {
        stream(response, plan, model, timer);
      } else {
        unary(response, plan, model, timer);
      }
    } catch (InvalidRequest e) {
      timer.end(Outcome.INVALID);
      sendError(response, 422, e.getMessage());
    } catch (GenerationException e) {
      fail(response, timer, e);
    }
  }

  private void unary(
      HttpServerResponse response, TgiRequests.Plan plan, WorkerInfo model, RequestTimer timer) {
    Collector collector = new Collector(1);
    SequenceGroup group = SequenceGroup.start(generator, List.of(plan.request()), timer, collector);
    response.closeHandler(v -> cancel(group, timer));
    collector
        .future()
        .onSuccess(
            results -> {
              SequenceResult r = results.getFirst();
              JsonObject out = new JsonObject().put("generated_text", fullText(plan, r.text));
              if (plan.details()) {
                JsonObject details = details(plan, r.started, r.finished);
                JsonArray tokens = new JsonArray();
                JsonArray tops = new JsonArray();
                for (Token t : r.tokens) {
                  tokens.add(token(t.getId(), t.getTokenText(), t.getLogprob(), model));
                  tops.add(topTokens(t, model));
                }
                details.put("tokens", tokens);
                if (plan.topNTokens() > 0) {
                  details.put("top_tokens", tops);
                }
                out.put("details", details);
              }
              timer.end(Outcome.SUCCESS);
              response.putHeader("content-type", "application/json").end(out.encode());
            })
        .onFailure(e -> fail(response, timer, (GenerationException) e));
  }

  private String fullText(TgiRequests.Plan plan, CharSequence generated) {
    return plan.returnFullText() ? plan.inputs() + generated : generated.toString();
  }

  private JsonObject details(TgiRequests.Plan plan, Started started, Finished finished) {
    JsonObject details =
        new JsonObject()
            .put("finish_reason", finishReason(finished.getReason()))
            .put("generated_tokens", finished.getGeneratedTokenCount())
            .put("seed", plan.sampled() ? started.getSeed() : null)
            .put("input_length", finished.getInputTokenCount());
    if (plan.decoderInputDetails()) {
      JsonArray prefill = new JsonArray();
      for (PromptToken t : started.getPromptTokensList()) {
        prefill.add(
            new JsonObject()
                .put("id", t.getId())
                .put("text", t.getText())
                .put("logprob", t.hasLogprob() ? Models.finite(t.getLogprob()) : null));
      }
      details.put("prefill", prefill);
    } else {
      details.put("prefill", new JsonArray());
    }
    return details;
  }

  static String finishReason(FinishReason reason) {
    return switch (reason) {
      case EOS_TOKEN -> "eos_token";
      case STOP_SEQUENCE -> "stop_sequence";
      default -> "length";
    };
  }

  private static JsonObject token(int id, String text, float logprob, WorkerInfo model) {
    return new JsonObject()
        .put("id", id)
        .put("text", text)
        .put("logprob", Models.finite(logprob))
        .put("special", id == model.getEosTokenId());
  }

  private static JsonArray topTokens(Token t, WorkerInfo model) {
    JsonArray tops = new JsonArray();
    for (TopToken tt : t.getTopTokensList()) {
      tops.add(token(tt.getId(), tt.getText(), tt.getLogprob(), model));
    }
    return tops;
  }

  private void stream(
      HttpServerResponse response, TgiRequests.Plan plan, WorkerInfo model, RequestTimer timer) {
    SseStream sse = new SseStream(response, "data:");
    SequenceGroup.Events events =
        new SequenceGroup.Events() {
          private Started started = Started.getDefaultInstance();
          private final StringBuilder text = new StringBuilder();
          // NOTE: TGI puts generated_text and details on the last token's event, and only Finished
          // tells which token was last, so each token waits for the next event before it goes out.
          private Token pending;

          private JsonObject event(Token t, String visibleText) {
            JsonObject e =
                new JsonObject()
                    .put("index", t.getIndex() + 1)
                    .put("token", token(t.getId(), visibleText, t.getLogprob(), model));
            if (plan.topNTokens() > 0) {
              e.put("top_tokens", topTokens(t, model));
            }
            return e;
          }

          @Override
          public void started(int index, Started s) {
            started = s;
          }

          @Override
          public void tokens(int index, Tokens tokens) {
            for (Token t : tokens.getTokensList()) {
              if (pending != null) {
                // NOTE: token.text is the text the client may show now, so that concatenating
                // token.text gives generated_text even where text is held back for a stop check.
                sse.send(
                    event(pending, pending.getText())
                        .putNull("generated_text")
                        .putNull("details")
                        .encode());
              }
              pending = t;
              text.append(t.getText());
            }
          }

          @Override
          public void finished(int index, Finished finished) {
            text.append(finished.getTrailingText());
            Token last =
                pending != null ? pending : Token.newBuilder().setId(model.getEosTokenId()).build();
            String lastText =
                (pending != null ? pending.getText() : "") + finished.getTrailingText();
            sse.send(
                event(last, lastText)
                    .put("generated_text", fullText(plan, text))
                    .put("details", details(plan, started, finished).put("prefill", null))
                    .encode());
          }

          @Override
          public void completed() {
            timer.end(Outcome.SUCCESS); // counted before the client can see the end
            sse.end();
          }

          @Override
          public void failed(GenerationException error) {
            if (!sse.started()) {
              fail(response, timer, error);
              return;
            }
            timer.end(HttpErrors.outcome(error.kind()));
            sse.send(errorBody(status(error.kind()), error.getMessage()).encode());
            sse.end();
          }
        };
    SequenceGroup group = SequenceGroup.start(generator, List.of(plan.request()), timer, events);
    sse.attach(group);
    response.closeHandler(v -> cancel(group, timer));
  }

  private static void cancel(SequenceGroup group, RequestTimer timer) {
    if (!group.over()) {
      group.cancel();
      timer.end(Outcome.CANCELLED);
    }
  }

  private void info(RoutingContext ctx) {
    List<WorkerInfo> models = generator.models();
    if (models.isEmpty()) {
      sendError(ctx.response(), 503, "no worker is ready to serve requests");
      return;
    }
    WorkerInfo m = models.getFirst();
    JsonObject info =
        new JsonObject()
            .put("model_id", m.getModelId())
            .putNull("model_sha")
            .put("model_pipeline_tag", "text-generation")
            .put("max_concurrent_requests", limits.maxInFlightPerModel())
            .put("max_best_of", 1)
            .put("max_stop_sequences", limits.maxStopSequences())
            .put("max_input_tokens", Math.max(1, m.getMaxContext() - 1))
            .put("max_input_length", Math.max(1, m.getMaxContext() - 1))
            .put("max_total_tokens", m.getMaxContext())
            .put("max_client_batch_size", limits.maxN())
            .put("validation_workers", 1)
            .put("requires_padding", false)
            .put("router", "starserve")
            .put("version", "0.1.0")
            .putNull("sha")
            .putNull("docker_label");
    ctx.response().putHeader("content-type", "application/json").end(info.encode());
  }

  private void health(RoutingContext ctx) {
    if (generator.models().isEmpty()) {
      sendError(ctx.response(), 503, "no worker is ready to serve requests");
    } else {
      ctx.response().setStatusCode(200).end();
    }
  }

  private void tokenize(RoutingContext ctx) {
    HttpServerResponse response = ctx.response();
    try {
      Params p = new Params(body(ctx), "");
      String inputs = p.requiredString("inputs");
      if (inputs.length() > limits.maxPromptChars()) {
        throw new InvalidRequest(
            "inputs",
            "inputs must hold at most "
                + limits.maxPromptChars()
                + " characters, got "
                + inputs.length());
      }
      WorkerInfo model = Models.resolve(generator, null, true);
      TokenizeRequest request =
          TokenizeRequest.newBuilder()
              .setText(inputs)
              .setReturnTokens(true)
              .setReturnOffsets(true)
              .build();
      generator
          .tokenize(model.getModelId(), request)
          .onSuccess(
              r ->
                  response
                      .putHeader("content-type", "application/json")
                      .end(tokens(inputs, r).encode()))
          .onFailure(
              e ->
                  sendError(
                      response,
                      e instanceof GenerationException ge ? status(ge.kind()) : 500,
                      e.getMessage()));
    } catch (InvalidRequest e) {
      sendError(response, 422, e.getMessage());
    } catch (GenerationException e) {
      sendError(response, status(e.kind()), e.getMessage());
    }
  }

  private static JsonArray tokens(String inputs, TokenizeResponse r) {
    JsonArray out = new JsonArray();
    for (int i = 0; i < r.getIdsCount(); i++) {
      int start = i < r.getOffsetsCount() ? r.getOffsets(i).getStart() : 0;
      int stop = i < r.getOffsetsCount() ? r.getOffsets(i).getEnd() : 0;
      String text =
          i < r.getOffsetsCount() && start <= stop && stop <= inputs.length()
              ? inputs.substring(start, stop)
              : i < r.getTokensCount() ? r.getTokens(i) : "";
      out.add(
          new JsonObject()
              .put("id", r.getIds(i))
              .put("text", text)
              .put("start", start)
              .put("stop", stop));
    }
    return out;
  }
}
