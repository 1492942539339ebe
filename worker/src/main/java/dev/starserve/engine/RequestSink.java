package dev.starserve.engine;

import java.util.List;

/**
 * Receives a request's events, on the engine loop thread: implementations must return quickly and
 * never block (hand the event to another thread or a non-blocking stream). Each sample gets its
 * token events in order, then exactly one finish event.
 */
public interface RequestSink {
  void onToken(TokenEvent event);

  void onFinish(FinishEvent event);

  /**
   * The prompt's logprobs (every prompt token after the first), once the prompt has been read and
   * just before the first generated token's event; only for requests that asked for them. They also
   * come with the finish event.
   */
  default void onPromptLogprobs(String requestId, List<FinishEvent.PromptLogprob> promptLogprobs) {}
}
