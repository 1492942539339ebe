package dev.starserve.checkpoint;

import java.nio.file.Path;

/**
 * A model directory or checkpoint file that cannot be used. The message always names the file and,
 * where one is involved, the tensor, so that a user can fix the input without a debugger.
 */
public final class CheckpointException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final transient Path file;
  private final String tensor;

  public CheckpointException(Path file, String tensor, String problem) {
    this(file, tensor, problem, null);
  }

  public CheckpointException(Path file, String tensor, String problem, Throwable cause) {
    super(describe(file, tensor, problem), cause);
    this.file = file;
    this.tensor = tensor;
  }

  private static String describe(Path file, String tensor, String problem) {
    StringBuilder sb = new StringBuilder();
    sb.append(file == null ? "<no file>" : file.toString());
    if (tensor != null) {
      sb.append(": tensor '").append(tensor).append('\'');
    }
    return sb.append(": ").append(problem).toString();
  }

  /** The file at fault (may be null when the problem is the directory as a whole). */
  public Path file() {
    return file;
  }

  /** The tensor at fault, or null. */
  public String tensor() {
    return tensor;
  }
}
