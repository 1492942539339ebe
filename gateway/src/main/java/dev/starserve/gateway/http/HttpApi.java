package dev.starserve.gateway.http;

import dev.starserve.gateway.GatewayLimits;
import dev.starserve.gateway.admission.AdmissionControl;
import dev.starserve.gateway.api.openai.OpenAiApi;
import dev.starserve.gateway.api.tgi.TgiApi;
import dev.starserve.gateway.auth.ApiKeys;
import dev.starserve.gateway.generate.Generator;
import dev.starserve.gateway.metrics.GatewayMetrics;
import dev.starserve.gateway.metrics.GatewayMetrics.Outcome;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import java.util.List;
import java.util.Set;
import java.util.function.BooleanSupplier;

/**
 * The HTTP side of the gateway on one port: OpenAI under {@code /v1}, TGI at the root, {@code
 * /metrics}. API keys, body limit and router errors (404, 405, 413) answer in the shape of the API
 * the path belongs to.
 *
 * <p>While the gateway drains ({@code draining} true), the generation routes answer 503 with
 * Retry-After and "gateway is draining" in their API's error shape, and {@code /health} answers 503
 * {@code {"status": "draining", ...}}; everything else (/metrics, /info, /v1/models, /tokenize)
 * still answers.
 */
public final class HttpApi {
  private static final Set<String> OPEN_PATHS = Set.of("/health", "/metrics");
  private static final List<String> GENERATION_PATHS =
      List.of("/v1/completions", "/v1/chat/completions", "/generate", "/generate_stream", "/");

  private HttpApi() {}

  public static Router router(
      Vertx vertx,
      Generator generator,
      GatewayLimits limits,
      ApiKeys keys,
      GatewayMetrics metrics,
      BooleanSupplier draining) {
    Router router = Router.router(vertx);
    router
        .route()
        .handler(
            ctx -> {
              if (OPEN_PATHS.contains(ctx.normalizedPath())
                  || keys.allows(ctx.request().getHeader("authorization"))) {
                ctx.next();
                return;
              }
              metrics.startRequest(api(ctx), "").end(Outcome.UNAUTHENTICATED);
              ctx.response().putHeader("www-authenticate", "Bearer");
              error(ctx, 401, "missing or unknown API key (send Authorization: Bearer <key>)");
            });
    router
        .route()
        .handler(
            BodyHandler.create()
                .setBodyLimit(limits.maxBodyBytes())
                .setHandleFileUploads(false)
                .setDeleteUploadedFilesOnEnd(true));
    for (String path : GENERATION_PATHS) {
      router
          .post(path)
          .handler(
              ctx -> {
                if (!draining.getAsBoolean()) {
                  ctx.next();
                  return;
                }
                String api =
                    switch (path) {
                      case "/v1/completions" -> "openai_completions";
                      case "/v1/chat/completions" -> "openai_chat";
                      default -> "tgi";
                    };
                metrics.startRequest(api, "").end(Outcome.UNAVAILABLE);
                ctx.response()
                    .putHeader("retry-after", Integer.toString(limits.retryAfterSeconds()));
                if (path.startsWith("/v1/")) {
                  OpenAiApi.sendError(
                      ctx.response(),
                      503,
                      AdmissionControl.DRAINING_MESSAGE,
                      null,
                      "gateway_draining");
                } else {
                  TgiApi.sendError(ctx.response(), 503, AdmissionControl.DRAINING_MESSAGE);
                }
              });
    }
    router
        .get("/health")
        .handler(
            ctx -> {
              if (!draining.getAsBoolean()) {
                ctx.next();
                return;
              }
              ctx.response()
                  .setStatusCode(503)
                  .putHeader("content-type", "application/json")
                  .putHeader("retry-after", Integer.toString(limits.retryAfterSeconds()))
                  .end(
                      new JsonObject()
                          .put("status", "draining")
                          .put("error", AdmissionControl.DRAINING_MESSAGE)
                          .put("error_type", "unhealthy")
                          .encode());
            });
    router
        .get("/metrics")
        .handler(
            ctx ->
                vertx
                    .executeBlocking(metrics::scrape, false)
                    .onSuccess(
                        bytes ->
                            ctx.response()
                                .putHeader("content-type", metrics.contentType())
                                .end(Buffer.buffer(bytes)))
                    .onFailure(ctx::fail));
    new OpenAiApi(generator, limits, metrics).mount(router);
    new TgiApi(generator, limits, metrics).mount(router);
    router.errorHandler(404, ctx -> error(ctx, 404, "no route for " + ctx.request().path()));
    router.errorHandler(
        405,
        ctx ->
            error(ctx, 405, ctx.request().method() + " is not allowed on " + ctx.request().path()));
    router.errorHandler(
        413,
        ctx ->
            error(
                ctx,
                413,
                "the request body is larger than the limit of "
                    + limits.maxBodyBytes()
                    + " bytes"));
    router.errorHandler(500, ctx -> error(ctx, 500, "internal error"));
    return router;
  }

  private static String api(RoutingContext ctx) {
    return ctx.normalizedPath().startsWith("/v1/") ? "openai" : "tgi";
  }

  private static void error(RoutingContext ctx, int status, String message) {
    if (ctx.response().headWritten()) {
      ctx.response().reset();
      return;
    }
    if (ctx.normalizedPath().startsWith("/v1/")) {
      String code =
          switch (status) {
            case 401 -> "invalid_api_key";
            case 404 -> "not_found";
            case 413 -> "request_too_large";
            default -> null;
          };
      OpenAiApi.sendError(ctx.response(), status, message, null, code);
    } else {
      TgiApi.sendError(ctx.response(), status, message);
    }
  }
}
