package dev.starserve.gateway.api.openai;

import dev.starserve.gateway.GatewayLimits;
import dev.starserve.gateway.api.Collector;
import dev.starserve.gateway.api.InvalidRequest;
import dev.starserve.gateway.api.Models;
import dev.starserve.gateway.api.SequenceGroup;
import dev.starserve.gateway.api.SequenceResult;
import dev.starserve.gateway.generate.GenerationException;
import dev.starserve.gateway.generate.Generator;
import dev.starserve.gateway.http.HttpErrors;
import dev.starserve.gateway.http.SseStream;
import dev.starserve.gateway.metrics.GatewayMetrics;
import dev.starserve.gateway.metrics.GatewayMetrics.Outcome;
import dev.starserve.gateway.metrics.RequestTimer;
import dev.starserve.proto.worker.v1.Finished;
import dev.starserve.proto.worker.v1.Started;
import dev.starserve.proto.worker.v1.Tokens;
import dev.starserve.proto.worker.v1.WorkerInfo;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import java.util.UUID;

/** OpenAI {@code /v1/completions}, {@code /v1/chat/completions} and {@code /v1/models}. */
public final class OpenAiApi {
  private final Generator generator;
  private final GatewayLimits limits;
  private final GatewayMetrics metrics;

  public OpenAiApi(Generator generator, GatewayLimits limits, GatewayMetrics metrics) {
    this.generator = generator;
    this.limits = limits;
    this.metrics = metrics;
  }

  public void mount(Router router) {
    router.get("/v1/models").handler(this::models);
    router.post("/v1/completions").handler(ctx -> generate(ctx, false));
    router.post("/v1/chat/completions").handler(ctx -> generate(ctx, true));
  }

  /** Sends {@code {"error":{"message","type","param","code"}}} with the status. */
  public static void sendError(
      HttpServerResponse response, int status, String message, String param, String code) {
    if (response.headWritten() || response.closed()) {
      return;
    }
    String type =
        switch (status) {
          case 400, 404, 405, 413, 422 -> "invalid_request_error";
          case 401 -> "authentication_error";
          case 429 -> "rate_limit_error";
          case 504 -> "timeout";
          default -> "server_error";
        };
    JsonObject error =
        new JsonObject()
            .put("message", message)
            .put("type", type)
            .put("param", param)
            .put("code", code);
    response
        .setStatusCode(status)
        .putHeader("content-type", "application/json")
        .end(new JsonObject().put("error", error).encode());
  }

  private void models(RoutingContext ctx) {
    JsonArray data = new JsonArray();
    for (WorkerInfo info : generator.models()) {
      data.add(
          new JsonObject()
              .put("id", info.getModelId())
              .put("object", "model")
              .put("created", 0)
              .put("owned_by", "starserve")
              .put("max_model_len", info.getMaxContext()));
    }
    ctx.response()
        .putHeader("content-type", "application/json")
        .end(new JsonObject().put("object", "list").put("data", data).encode());
  }

  private void generate(RoutingContext ctx, boolean chat) {
    RequestTimer timer = metrics.startRequest(chat ? "openai_chat" : "openai_completions", "");
    HttpServerResponse response = ctx.response();
    try {
      JsonObject body = body(ctx);
      WorkerInfo model = Models.resolve(generator, OpenAiRequests.model(body), false);
      timer.model(model.getModelId());
      String id = (chat ? "chatcmpl-" : "cmpl-") + UUID.randomUUID().toString().replace("-", "");
      OpenAiRequests.Plan plan =
          chat
              ? OpenAiRequests.chat(body, model, limits, id)
              : OpenAiRequests.completion(body, model, limits, id);
      OpenAiFrames frames =
          chat ? new OpenAiFrames.ChatCompletion(plan) : new OpenAiFrames.Completion(plan);
      JsonObject envelope =
          new JsonObject()
              .put("id", id)
              .put("created", System.currentTimeMillis() / 1000)
              .put("model", plan.model());
      if (plan.stream()) {
        stream(response, plan, frames, envelope, timer);
      } else {
        unary(response, plan, frames, envelope, timer);
      }
    } catch (InvalidRequest e) {
      timer.end(Outcome.INVALID);
      sendError(response, 400, e.getMessage(), e.param(), null);
    } catch (GenerationException e) {
      fail(response, timer, e);
    }
  }

  static JsonObject body(RoutingContext ctx) {
    try {
      JsonObject body = ctx.body().asJsonObject();
      if (body == null) {
        throw new InvalidRequest(null, "the request body must be a JSON object");
      }
      return body;
    } catch (RuntimeException e) {
      if (e instanceof InvalidRequest ir) {
        throw ir;
      }
      throw new InvalidRequest(null, "the request body must be a JSON object");
    }
  }

  private void fail(HttpServerResponse response, RequestTimer timer, GenerationException e) {
    timer.end(HttpErrors.outcome(e.kind()));
    int status = HttpErrors.status(e.kind());
    if (status == 429) {
      response.putHeader("retry-after", Integer.toString(limits.retryAfterSeconds()));
    }
    String code =
        switch (e.kind()) {
          case MODEL_NOT_FOUND -> "model_not_found";
          case OVERLOADED -> "rate_limit_exceeded";
          default -> null;
        };
    sendError(
        response,
        status,
        e.getMessage(),
        e.kind() == GenerationException.Kind.MODEL_NOT_FOUND ? "model" : null,
        code);
  }

  private void unary(
      HttpServerResponse response,
      OpenAiRequests.Plan plan,
      OpenAiFrames frames,
      JsonObject envelope,
      RequestTimer timer) {
    Collector collector = new Collector(plan.requests().size());
    SequenceGroup group = SequenceGroup.start(generator, plan.requests(), timer, collector);
    response.closeHandler(v -> cancel(group, timer));
    collector
        .future()
        .onSuccess(
            results -> {
              JsonArray choices = new JsonArray();
              long prompt = 0;
              long completion = 0;
              for (int i = 0; i < results.size(); i++) {
                SequenceResult r = results.get(i);
                choices.add(frames.choice(i, r));
                if (i % plan.n() == 0) {
                  prompt += r.finished.getInputTokenCount();
                }
                completion += r.finished.getGeneratedTokenCount();
              }
              timer.end(Outcome.SUCCESS);
              response
                  .putHeader("content-type", "application/json")
                  .end(
                      envelope
                          .copy()
                          .put("object", frames.object(false))
                          .put("choices", choices)
                          .put("usage", usage(prompt, completion))
                          .encode());
            })
        .onFailure(e -> fail(response, timer, (GenerationException) e));
  }

  private void stream(
      HttpServerResponse response,
      OpenAiRequests.Plan plan,
      OpenAiFrames frames,
      JsonObject envelope,
      RequestTimer timer) {
    SseStream sse = new SseStream(response, "data: ");
    long[] usage = new long[2];
    SequenceGroup.Events events =
        new SequenceGroup.Events() {
          private void send(JsonObject choice) {
            if (choice != null) {
              JsonObject chunk =
                  envelope
                      .copy()
                      .put("object", frames.object(true))
                      .put("choices", new JsonArray().add(choice));
              if (plan.includeUsage()) {
                chunk.putNull("usage");
              }
              sse.send(chunk.encode());
            }
          }

          @Override
          public void started(int index, Started started) {
            send(frames.startChoice(index, started));
          }

          @Override
          public void tokens(int index, Tokens tokens) {
            send(frames.tokensChoice(index, tokens.getTokensList()));
          }

          @Override
          public void finished(int index, Finished finished) {
            if (index % plan.n() == 0) {
              usage[0] += finished.getInputTokenCount();
            }
            usage[1] += finished.getGeneratedTokenCount();
            send(frames.finishChoice(index, finished));
          }

          @Override
          public void completed() {
            timer.end(Outcome.SUCCESS); // counted before the client can read the last event
            if (plan.includeUsage()) {
              sse.send(
                  envelope
                      .copy()
                      .put("object", frames.object(true))
                      .put("choices", new JsonArray())
                      .put("usage", usage(usage[0], usage[1]))
                      .encode());
            }
            sse.send("[DONE]");
            sse.end();
          }

          @Override
          public void failed(GenerationException error) {
            if (!sse.started()) {
              fail(response, timer, error);
              return;
            }
            // NOTE: the status is already 200; OpenAI clients read an error object in the stream.
            timer.end(HttpErrors.outcome(error.kind()));
            JsonObject body =
                new JsonObject()
                    .put(
                        "error",
                        new JsonObject()
                            .put("message", error.getMessage())
                            .put("type", "server_error")
                            .putNull("param")
                            .putNull("code"));
            sse.send(body.encode());
            sse.send("[DONE]");
            sse.end();
          }
        };
    SequenceGroup group = SequenceGroup.start(generator, plan.requests(), timer, events);
    sse.attach(group);
    response.closeHandler(v -> cancel(group, timer));
  }

  private static void cancel(SequenceGroup group, RequestTimer timer) {
    if (!group.over()) {
      group.cancel();
      timer.end(Outcome.CANCELLED);
    }
  }

  private static JsonObject usage(long prompt, long completion) {
    return new JsonObject()
        .put("prompt_tokens", prompt)
        .put("completion_tokens", completion)
        .put("total_tokens", prompt + completion);
  }
}
