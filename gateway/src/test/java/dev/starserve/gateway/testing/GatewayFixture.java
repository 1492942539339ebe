package dev.starserve.gateway.testing;

import dev.starserve.gateway.GatewayLimits;
import dev.starserve.gateway.GatewayServer;
import dev.starserve.gateway.auth.ApiKeys;
import dev.starserve.gateway.metrics.GatewayMetrics;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** One gateway on loopback ports 0 over a {@link ScriptedGenerator}, and an HTTP client. */
public final class GatewayFixture implements AutoCloseable {
  public final Vertx vertx = Vertx.vertx();
  public final ScriptedGenerator generator = new ScriptedGenerator(vertx);
  public final GatewayMetrics metrics = new GatewayMetrics();
  public final GatewayServer server;
  public final HttpClient http =
      HttpClient.newBuilder()
          .version(HttpClient.Version.HTTP_1_1)
          .connectTimeout(Duration.ofSeconds(5))
          .build();
  public String apiKey;

  public GatewayFixture() {
    this(GatewayLimits.defaults(), ApiKeys.none());
  }

  public GatewayFixture(GatewayLimits limits, ApiKeys keys) {
    server = new GatewayServer(vertx, generator, limits, keys, metrics);
    await(server.start("127.0.0.1", 0, 0));
  }

  public static <T> T await(Future<T> future) {
    try {
      return future.toCompletionStage().toCompletableFuture().get(20, TimeUnit.SECONDS);
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  public URI uri(String path) {
    return URI.create("http://127.0.0.1:" + server.httpPort() + path);
  }

  public HttpRequest.Builder request(String path) {
    HttpRequest.Builder b = HttpRequest.newBuilder(uri(path)).timeout(Duration.ofSeconds(20));
    if (apiKey != null) {
      b.header("authorization", "Bearer " + apiKey);
    }
    return b;
  }

  public HttpResponse<String> post(String path, JsonObject body) {
    return send(
        request(path)
            .header("content-type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body.encode()))
            .build());
  }

  public HttpResponse<String> get(String path) {
    return send(request(path).GET().build());
  }

  public HttpResponse<String> send(HttpRequest request) {
    try {
      return http.send(request, HttpResponse.BodyHandlers.ofString());
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * The {@code data} payloads of a server-sent event body, checking the framing: every event is one
   * {@code data<sep>} line followed by a blank line.
   */
  public static List<String> sseData(String body, String prefix) {
    List<String> out = new ArrayList<>();
    String[] events = body.split("\n\n", -1);
    if (!events[events.length - 1].isEmpty()) {
      throw new AssertionError("the stream does not end with a blank line: " + body);
    }
    for (int i = 0; i < events.length - 1; i++) {
      if (!events[i].startsWith(prefix) || events[i].contains("\n")) {
        throw new AssertionError("not a single '" + prefix + "' line: " + events[i]);
      }
      out.add(events[i].substring(prefix.length()));
    }
    return out;
  }

  public static JsonArray choices(JsonObject o) {
    return o.getJsonArray("choices");
  }

  public double metric(String line) {
    String text = get("/metrics").body();
    for (String l : text.split("\n")) {
      if (l.startsWith(line + " ")) {
        return Double.parseDouble(l.substring(line.length() + 1).trim());
      }
    }
    return 0;
  }

  @Override
  public void close() {
    await(server.close());
    await(vertx.close());
  }
}
