package dev.starserve.engine;

/**
 * What {@link Engine#submit} returns: the request's id and a way to abort exactly this request.
 * Unlike {@link Engine#abort(String)}, {@link #abort()} never touches a later request that reuses
 * the id once this one has ended. Thread-safe; aborting is idempotent and harmless after the end.
 */
public final class RequestHandle {
  private final Engine engine;
  private final String requestId;

  RequestHandle(Engine engine, String requestId) {
    this.engine = engine;
    this.requestId = requestId;
  }

  public String requestId() {
    return requestId;
  }

  /** Every sample of this request finishes with CANCELLED within one step, if still running. */
  public void abort() {
    engine.abort(this);
  }

  @Override
  public String toString() {
    return "RequestHandle[" + requestId + "]";
  }
}
