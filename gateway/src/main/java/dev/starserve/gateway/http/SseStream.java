package dev.starserve.gateway.http;

import dev.starserve.gateway.api.SequenceGroup;
import io.vertx.core.http.HttpServerResponse;

/**
 * Server-sent events over one HTTP response, honouring backpressure: when the response's write
 * queue is full the generation is paused and resumed on drain, so a slow reader never makes the
 * gateway buffer without bound. Headers go out with the first event, so an error before it can
 * still be answered with a proper status.
 */
public final class SseStream {
  private final HttpServerResponse response;
  private final String dataPrefix;
  private SequenceGroup group;
  private boolean paused;

  /**
   * @param dataPrefix {@code "data: "} (OpenAI) or {@code "data:"} (TGI frames its events so)
   */
  public SseStream(HttpServerResponse response, String dataPrefix) {
    this.response = response;
    this.dataPrefix = dataPrefix;
  }

  public void attach(SequenceGroup group) {
    this.group = group;
  }

  public boolean started() {
    return response.headWritten();
  }

  public void send(String data) {
    if (response.closed() || response.ended()) {
      return;
    }
    if (!response.headWritten()) {
      response
          .setChunked(true)
          .putHeader("content-type", "text/event-stream")
          .putHeader("cache-control", "no-cache")
          .putHeader("x-accel-buffering", "no");
    }
    response.write(dataPrefix + data + "\n\n");
    if (!paused && group != null && response.writeQueueFull()) {
      paused = true;
      group.pause();
      response.drainHandler(
          v -> {
            paused = false;
            group.resume();
          });
    }
  }

  public void end() {
    if (!response.closed() && !response.ended()) {
      response.end();
    }
  }
}
