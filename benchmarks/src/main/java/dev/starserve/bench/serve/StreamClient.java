package dev.starserve.bench.serve;

import io.vertx.core.Future;
import io.vertx.core.Vertx;

/**
 * Sends streaming generation requests through one public API, the way a real client does. All calls
 * are made on one Vert.x event-loop context, and the listener is called back on it.
 */
public interface StreamClient {
  /** Starts one request; the handle cancels it (idempotent, also after it ended). */
  Cancellable send(BenchRequest request, StreamListener listener);

  /** Closes the connections. */
  Future<Void> close();

  /** A request in flight. */
  interface Cancellable {
    void cancel();
  }

  /** The client for {@code config.api()}, its connection pool sized for the concurrency. */
  static StreamClient create(Vertx vertx, ServeBenchConfig config) {
    return switch (config.api()) {
      case OPENAI -> new OpenAiStreamClient(vertx, config);
      case TGI -> new TgiStreamClient(vertx, config);
      case FMAAS -> new FmaasStreamClient(vertx, config);
    };
  }
}
