package dev.starserve.engine;

/**
 * Receives a request's events, on the engine loop thread: implementations must return quickly and
 * never block (hand the event to another thread or a non-blocking stream). Each sample gets its
 * token events in order, then exactly one finish event.
 */
public interface RequestSink {
  void onToken(TokenEvent event);

  void onFinish(FinishEvent event);
}
