package dev.starserve.text;

/**
 * A tokenizer file that cannot be used. The message always names the file (a path or a classpath
 * resource) and the field or problem, so that a user can fix the input without a debugger.
 */
public final class TokenizerException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final String source;

  public TokenizerException(String source, String problem) {
    this(source, problem, null);
  }

  public TokenizerException(String source, String problem, Throwable cause) {
    super((source == null ? "<no file>" : source) + ": " + problem, cause);
    this.source = source;
  }

  /** The file at fault, as given to the loader (a path or a classpath resource name). */
  public String source() {
    return source;
  }
}
