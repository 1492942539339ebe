package dev.starserve.gateway.generate;

/**
 * Why a generation (or tokenization) failed, in terms each public API maps to its own status: gRPC
 * code, HTTP status and error type.
 */
public final class GenerationException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /** What went wrong, from the client's point of view. */
  public enum Kind {
    /** The request is invalid (names the field): gRPC INVALID_ARGUMENT, HTTP 400/422. */
    INVALID_ARGUMENT,
    /** No worker serves the requested model: gRPC NOT_FOUND, HTTP 404. */
    MODEL_NOT_FOUND,
    /** Queues are full; retry later: gRPC RESOURCE_EXHAUSTED, HTTP 429 with Retry-After. */
    OVERLOADED,
    /** No worker could take or finish it: gRPC UNAVAILABLE, HTTP 503. */
    UNAVAILABLE,
    /** The worker failed the generation itself: gRPC INTERNAL, HTTP 500 (TGI 424). */
    GENERATION_FAILED,
    /** The client's deadline passed: gRPC DEADLINE_EXCEEDED, HTTP 504. */
    DEADLINE_EXCEEDED
  }

  private final Kind kind;

  public GenerationException(Kind kind, String message) {
    super(message);
    this.kind = kind;
  }

  public GenerationException(Kind kind, String message, Throwable cause) {
    super(message, cause);
    this.kind = kind;
  }

  public Kind kind() {
    return kind;
  }
}
