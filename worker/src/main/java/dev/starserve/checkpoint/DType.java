package dev.starserve.checkpoint;

/** Element types a safetensors checkpoint may store, with the names safetensors uses. */
public enum DType {
  F32("F32", 4),
  F16("F16", 2),
  BF16("BF16", 2);

  private final String safetensorsName;
  private final int byteSize;

  DType(String safetensorsName, int byteSize) {
    this.safetensorsName = safetensorsName;
    this.byteSize = byteSize;
  }

  /** The dtype string in a safetensors header, e.g. {@code "BF16"}. */
  public String safetensorsName() {
    return safetensorsName;
  }

  /** Bytes per element. */
  public int byteSize() {
    return byteSize;
  }

  /** Parses a safetensors dtype string; returns null when it is not one StarServe reads. */
  public static DType fromSafetensors(String name) {
    for (DType t : values()) {
      if (t.safetensorsName.equals(name)) {
        return t;
      }
    }
    return null;
  }
}
