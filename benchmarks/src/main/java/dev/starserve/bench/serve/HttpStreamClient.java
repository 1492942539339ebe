package dev.starserve.bench.serve;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientAgent;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonObject;

/**
 * The HTTP half shared by the OpenAI and TGI clients: a keep-alive HTTP/1.1 pool with one
 * connection per request in flight, a JSON POST, an error answer read and counted by status, and a
 * 200 answer cut into server-sent events for the API's {@link Events}.
 */
abstract class HttpStreamClient implements StreamClient {
  /** Connect timeout: a target that does not answer the handshake is a connect failure. */
  static final int CONNECT_TIMEOUT_MILLIS = 10_000;

  private static final int MAX_ERROR_CHARS = 300;

  /** One request's events, in order; {@link #end} when the response is complete. */
  interface Events {
    void data(String data);

    void end();
  }

  final Target target;
  private final String authorization;
  private final HttpClientAgent http;

  HttpStreamClient(Vertx vertx, ServeBenchConfig config) {
    this.target = config.target();
    this.authorization = config.apiKey() == null ? null : "Bearer " + config.apiKey();
    this.http =
        vertx.createHttpClient(
            new HttpClientOptions()
                .setConnectTimeout(CONNECT_TIMEOUT_MILLIS)
                .setKeepAlive(true)
                .setDecompressionSupported(false),
            new PoolOptions().setHttp1MaxSize(config.concurrency()));
  }

  RequestOptions options(HttpMethod method, String path) {
    RequestOptions o =
        new RequestOptions()
            .setMethod(method)
            .setHost(target.host())
            .setPort(target.port())
            .setURI(target.basePath() + path);
    if (authorization != null) {
      o.putHeader("authorization", authorization);
    }
    return o;
  }

  /**
   * POSTs {@code body} to {@code path} and streams the answer's events to {@code events}; failures
   * before the stream go to {@code listener}.
   */
  Cancellable post(String path, JsonObject body, StreamListener listener, Events events) {
    Exchange ex = new Exchange();
    http.request(
            options(HttpMethod.POST, path)
                .putHeader("content-type", "application/json")
                .putHeader("accept", "text/event-stream"))
        .onComplete(
            ar -> {
              if (ar.failed()) {
                listener.failed(FailureKinds.of(ar.cause()), FailureKinds.describe(ar.cause()));
                return;
              }
              HttpClientRequest request = ar.result();
              ex.request = request;
              if (ex.cancelled) {
                request.reset();
                return;
              }
              request
                  .send(body.toBuffer())
                  .onComplete(
                      rr -> {
                        if (rr.failed()) {
                          listener.failed(
                              FailureKinds.of(rr.cause()), FailureKinds.describe(rr.cause()));
                          return;
                        }
                        HttpClientResponse response = rr.result();
                        if (response.statusCode() != 200) {
                          int status = response.statusCode();
                          response
                              .body()
                              .onComplete(
                                  b ->
                                      listener.failed(
                                          FailureKinds.http(status),
                                          "HTTP "
                                              + status
                                              + (b.succeeded() ? ": " + clip(b.result()) : "")));
                          return;
                        }
                        SseParser parser = new SseParser(events::data);
                        response.handler(parser::feed);
                        response.exceptionHandler(
                            t -> listener.failed(FailureKinds.STREAM, FailureKinds.describe(t)));
                        response.endHandler(v -> events.end());
                      });
            });
    return ex;
  }

  private static String clip(Buffer body) {
    String s = body.toString().strip();
    return s.length() <= MAX_ERROR_CHARS ? s : s.substring(0, MAX_ERROR_CHARS) + "...";
  }

  /** GET {@code path} and parse the 200 answer as a JSON object (a failed future otherwise). */
  Future<JsonObject> getJson(String path) {
    return http.request(options(HttpMethod.GET, path))
        .compose(HttpClientRequest::send)
        .compose(
            r ->
                r.body()
                    .map(
                        b -> {
                          if (r.statusCode() != 200) {
                            throw new IllegalStateException(
                                "HTTP " + r.statusCode() + ": " + clip(b));
                          }
                          return b.toJsonObject();
                        }));
  }

  @Override
  public Future<Void> close() {
    return http.close();
  }

  /** The cancel handle: resets the request now, or as soon as it has a connection. */
  private static final class Exchange implements Cancellable {
    HttpClientRequest request;
    boolean cancelled;

    @Override
    public void cancel() {
      if (cancelled) {
        return;
      }
      cancelled = true;
      if (request != null) {
        request.reset();
      }
    }
  }
}
