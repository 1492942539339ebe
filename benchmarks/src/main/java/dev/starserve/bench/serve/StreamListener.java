package dev.starserve.bench.serve;

/**
 * What one streaming request reports, on the bench's Vert.x context. A client calls {@link
 * #finished} or {@link #failed} at most once between them, but the listener must still ignore
 * anything after the first end (a cancelled stream may report its reset).
 */
public interface StreamListener {
  /** The first message carrying generated tokens arrived (time to first token ends here). */
  void firstToken();

  /**
   * About {@code count} more generated tokens arrived (for the progress line: exact for fmaas and
   * TGI, one per chunk for OpenAI, whose chunks may hold several tokens or none).
   */
  void tokens(int count);

  /** The stream ended well; the counts are the server's own. */
  void finished(int promptTokens, int outputTokens);

  /**
   * The request failed.
   *
   * @param kind {@link FailureKinds}: {@code connect}, {@code stream}, {@code http_<status>},
   *     {@code grpc_<STATUS>}
   * @param detail what happened, for the report's examples
   */
  void failed(String kind, String detail);
}
