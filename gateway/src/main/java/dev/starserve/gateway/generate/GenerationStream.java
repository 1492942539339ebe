package dev.starserve.gateway.generate;

/**
 * The caller's handle on one running sequence. All methods are idempotent and may be called after
 * the end.
 */
public interface GenerationStream {
  /** Aborts the sequence on its worker (freeing its KV blocks); the listener hears nothing more. */
  void cancel();

  /**
   * Stops delivering events until {@link #resume()} (a slow client): the generator stops reading
   * from the worker, whose flow control then holds the rest, so nothing is buffered without bound.
   */
  void pause();

  void resume();
}
