package dev.starserve.backend;

/**
 * How the K/V cache stores its values. Attention always computes in float32; bf16 storage halves
 * the cache (twice the tokens in the same memory) at the cost of rounding every stored K and V to 8
 * significant bits.
 */
public enum KvDType {
  FP32("fp32", 4),
  BF16("bf16", 2);

  private final String cliName;
  private final int byteSize;

  KvDType(String cliName, int byteSize) {
    this.cliName = cliName;
    this.byteSize = byteSize;
  }

  /** The name on the command line and in logs: {@code fp32}, {@code bf16}. */
  public String cliName() {
    return cliName;
  }

  /** Bytes per stored value. */
  public int byteSize() {
    return byteSize;
  }

  /** The allowed names, comma-separated, for error messages. */
  public static String allowedNames() {
    StringBuilder sb = new StringBuilder();
    for (KvDType t : values()) {
      sb.append(sb.isEmpty() ? "" : ", ").append(t.cliName);
    }
    return sb.toString();
  }

  /**
   * Parses a {@link #cliName()}.
   *
   * @throws IllegalArgumentException naming the allowed values, for any other name
   */
  public static KvDType fromCliName(String name) {
    for (KvDType t : values()) {
      if (t.cliName.equals(name)) {
        return t;
      }
    }
    throw new IllegalArgumentException(
        "kv_cache_dtype must be one of " + allowedNames() + ", got '" + name + "'");
  }
}
