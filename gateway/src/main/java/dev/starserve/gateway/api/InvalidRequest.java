package dev.starserve.gateway.api;

/**
 * A request that fails validation at the edge. The message names the field and the allowed range
 * (for example {@code top_p must be in (0, 1], got 1.5}); {@link #param} is the field's name as the
 * client spelled it, or null when no single field is to blame.
 */
public final class InvalidRequest extends RuntimeException {
  private static final long serialVersionUID = 1L;
  private final String param;

  public InvalidRequest(String param, String message) {
    super(message, null, false, false);
    this.param = param;
  }

  public String param() {
    return param;
  }
}
