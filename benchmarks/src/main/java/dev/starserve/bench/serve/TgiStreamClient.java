package dev.starserve.bench.serve;

import io.vertx.core.Vertx;
import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonObject;

/**
 * TGI {@code POST /generate_stream}: greedy ({@code do_sample: false}), {@code max_new_tokens} =
 * the generation length and {@code details: true}, so that the last event carries the server's
 * {@code generated_tokens} and {@code input_length}. TGI has no way to ignore the end-of-sequence
 * token, so a request may end before the generation length (the report counts such requests).
 *
 * <p>Every event carries one token; the first is the first token.
 */
final class TgiStreamClient extends HttpStreamClient {
  TgiStreamClient(Vertx vertx, ServeBenchConfig config) {
    super(vertx, config);
  }

  @Override
  public Cancellable send(BenchRequest request, StreamListener listener) {
    JsonObject body =
        new JsonObject()
            .put("inputs", request.prompt())
            .put(
                "parameters",
                new JsonObject()
                    .put("max_new_tokens", request.maxNewTokens())
                    .put("do_sample", false)
                    .put("details", true));
    return post("/generate_stream", body, listener, new Events(listener));
  }

  private static final class Events implements HttpStreamClient.Events {
    private final StreamListener listener;
    private int tokens;
    private boolean over;

    Events(StreamListener listener) {
      this.listener = listener;
    }

    @Override
    public void data(String data) {
      if (over) {
        return;
      }
      JsonObject event;
      try {
        event = new JsonObject(data);
      } catch (DecodeException e) {
        over = true;
        listener.failed(FailureKinds.STREAM, "an event is not a JSON object: " + e.getMessage());
        return;
      }
      if (event.containsKey("error")) {
        over = true;
        listener.failed(FailureKinds.STREAM, "error in the stream: " + event.getValue("error"));
        return;
      }
      if (event.getValue("token") instanceof JsonObject) {
        if (tokens++ == 0) {
          listener.firstToken();
        }
        listener.tokens(1);
      }
      if (event.getValue("details") instanceof JsonObject details) {
        over = true;
        listener.finished(
            details.getInteger("input_length", 0), details.getInteger("generated_tokens", tokens));
      }
    }

    @Override
    public void end() {
      if (!over) {
        over = true;
        listener.failed(FailureKinds.STREAM, "the stream ended without its details event");
      }
    }
  }
}
