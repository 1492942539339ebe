package dev.starserve.bench.serve;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;

/**
 * OpenAI {@code POST /v1/completions} with {@code stream: true}: greedy ({@code temperature: 0}),
 * {@code max_tokens} = the generation length, vLLM's {@code min_tokens} and {@code ignore_eos} so
 * that the server produces exactly that many (StarServe and vLLM honour them), and {@code
 * stream_options.include_usage} for the server's token counts in a last chunk before {@code data:
 * [DONE]}.
 *
 * <p>The first token is the first chunk with a choice in it. A server may hold back a token whose
 * text is not complete yet (part of a multi-byte character), sending no chunk for it.
 */
final class OpenAiStreamClient extends HttpStreamClient {
  OpenAiStreamClient(Vertx vertx, ServeBenchConfig config) {
    super(vertx, config);
  }

  /** The first model {@code GET /v1/models} lists, for runs without {@code --model}. */
  Future<String> firstModel() {
    return getJson("/v1/models")
        .map(
            o -> {
              JsonArray data = o.getJsonArray("data");
              if (data == null || data.isEmpty()) {
                throw new IllegalStateException("the server lists no models");
              }
              return data.getJsonObject(0).getString("id");
            });
  }

  @Override
  public Cancellable send(BenchRequest request, StreamListener listener) {
    JsonObject body =
        new JsonObject()
            .put("model", request.model())
            .put("prompt", request.prompt())
            .put("max_tokens", request.maxNewTokens())
            .put("min_tokens", request.maxNewTokens())
            .put("ignore_eos", true)
            .put("temperature", 0)
            .put("stream", true)
            .put("stream_options", new JsonObject().put("include_usage", true));
    return post("/v1/completions", body, listener, new Events(listener));
  }

  private static final class Events implements HttpStreamClient.Events {
    private final StreamListener listener;
    private boolean first = true;
    private boolean over;
    private JsonObject usage;

    Events(StreamListener listener) {
      this.listener = listener;
    }

    @Override
    public void data(String data) {
      if (over) {
        return;
      }
      if (data.equals("[DONE]")) {
        over = true;
        if (usage == null) {
          listener.failed(FailureKinds.STREAM, "no usage chunk before data: [DONE]");
        } else {
          listener.finished(
              usage.getInteger("prompt_tokens", 0), usage.getInteger("completion_tokens", 0));
        }
        return;
      }
      JsonObject chunk;
      try {
        chunk = new JsonObject(data);
      } catch (DecodeException e) {
        over = true;
        listener.failed(FailureKinds.STREAM, "a chunk is not a JSON object: " + e.getMessage());
        return;
      }
      if (chunk.getValue("error") instanceof JsonObject error) {
        over = true;
        listener.failed(FailureKinds.STREAM, "error in the stream: " + error.getString("message"));
        return;
      }
      JsonArray choices = chunk.getJsonArray("choices");
      if (choices != null && !choices.isEmpty()) {
        if (first) {
          first = false;
          listener.firstToken();
        }
        listener.tokens(1);
      }
      if (chunk.getValue("usage") instanceof JsonObject u) {
        usage = u;
      }
    }

    @Override
    public void end() {
      if (!over) {
        over = true;
        listener.failed(FailureKinds.STREAM, "the stream ended without data: [DONE]");
      }
    }
  }
}
